"""CloudWatch Logs filter patterns, table-driven from the examples of AWS's "Filter pattern syntax for
metric filters, subscription filters, filter log events, and Live Tail"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html)."""

from __future__ import annotations

import json

import pytest

from ship.localcloud.emulator import logfilter
from ship.localcloud.emulator.logfilter import FilterPatternError

# -- unstructured log events ("Match terms in unstructured log events") -------------------------------------------

EVENTS = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[WARN] Internal server error retried",
    "[INFO] all good",
]


@pytest.mark.parametrize("pattern, expected", [
    ("", [0, 1, 2, 3, 4, 5]),                              # empty pattern: every event
    ('" "', [0, 1, 2, 3, 4, 5]),                            # AWS: " " matches everything
    ("ERROR", [0, 1, 2, 3]),                                # a single term
    ("error", [4]),                                         # case-sensitive
    ("ERROR ARGUMENTS", [2, 3]),                            # several terms: all of them
    ("ERROR REQUEST BAD", [0]),
    ('"MISSING ARGUMENTS"', [2]),                            # an exact phrase
    ('"INVALID  ARGUMENTS"', []),                           # ... exactly
    ("?MISSING ?INVALID", [2, 3]),                          # ? terms: any of them
    ("?WARN ?INFO", [4, 5]),
    ('?"BAD REQUEST" ?"all good"', [0, 5]),
    ("ERROR -ARGUMENTS", [0, 1]),                           # - terms: none of them
    ("ERROR -ARGUMENTS -BAD", [1]),
    ("-ERROR", [4, 5]),
    ('ERROR -"MISSING ARGUMENTS"', [0, 1, 3]),
    ("%ERROR 4[01][0-9]%", [0, 1, 2]),                      # a regular expression
    ("%^\\[INFO\\]%", [5]),
    ("%WARN|INFO%", [4, 5]),
])
def test_terms(pattern, expected):
    assert [i for i, e in enumerate(EVENTS) if logfilter.matches(pattern, e)] == expected


# -- JSON log events ("Using filter patterns to match terms in JSON log events") ------------------------------

STRINGS = json.dumps({
    "eventType": "UpdateTrail",
    "sourceIPAddress": "111.111.111.111",
    "arrayKey": ["value", "another value"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None,
    "ThisFlag": True,
    "ThatFlag": False,
    "nested": {"deeper": {"name": "x"}},
})
NUMBERS = json.dumps({"latency": 50, "bandwidth": 100, "refreshRate": 60, "responseTime": 5, "errorCode": 400,
                      "number": [1e-3, 1e+3], "text": "400"})
COMPOUND = json.dumps({
    "user": {"id": 1, "email": "John.Doe@example.com"},
    "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
    "actions": ["GET", "PUT", "DELETE"],
    "coordinates": [[0, 1], [2, 3]],
})


@pytest.mark.parametrize("pattern, event, expected", [
    ('{ $.eventType = "UpdateTrail" }', STRINGS, True),
    ("{ $.eventType = UpdateTrail }", STRINGS, True),                  # unquoted strings
    ('{ $.eventType = "Update*" }', STRINGS, True),                    # * wildcard
    ('{ $.eventType = "*Trail" }', STRINGS, True),
    ('{ $.eventType = "Update" }', STRINGS, False),                    # equality is not substring
    ('{ $.eventType = "*" }', STRINGS, True),                          # exists (CDK's FilterPattern.exists)
    ('{ $.missing = "*" }', STRINGS, False),
    ("{ $.sourceIPAddress != 123.123.* }", STRINGS, True),
    ("{ $.sourceIPAddress != 111.111.* }", STRINGS, False),
    ('{ $.arrayKey[0] = "value" }', STRINGS, True),
    ('{ $.arrayKey[1] = "value" }', STRINGS, False),
    ('{ $.arrayKey[5] = "value" }', STRINGS, False),
    ("{ $.objectList[1].id = 2 }", STRINGS, True),
    ("{ $.objectList[0].id = 2 }", STRINGS, False),
    ("{ $.objectList[*].id = 2 }", STRINGS, True),                     # array wildcard
    ('{ $.nested.*.name = "x" }', STRINGS, True),                      # key wildcard
    ("{ $.SomeObject IS NULL }", STRINGS, True),
    ("{ $.eventType IS NULL }", STRINGS, False),
    ("{ $.SomeOtherObject NOT EXISTS }", STRINGS, True),
    ("{ $.SomeObject NOT EXISTS }", STRINGS, False),                   # null exists
    ("{ $.ThisFlag IS TRUE }", STRINGS, True),
    ("{ $.ThatFlag IS FALSE }", STRINGS, True),
    ("{ $.ThatFlag IS TRUE }", STRINGS, False),
    ("{ $.eventType = %Update[A-Z][a-z]+% }", STRINGS, True),          # regex value
    ("{ $.eventType != %^Delete% }", STRINGS, True),
    ("{ $.bandwidth > 75 }", NUMBERS, True),
    ("{ $.latency < 50 }", NUMBERS, False),
    ("{ $.latency <= 50 }", NUMBERS, True),
    ("{ $.refreshRate >= 60 }", NUMBERS, True),
    ("{ $.responseTime <= 5 }", NUMBERS, True),
    ("{ $.errorCode = 400 }", NUMBERS, True),
    ("{ $.errorCode = 400.0 }", NUMBERS, True),
    ("{ $.errorCode != 500 }", NUMBERS, True),
    ("{ $.errorCode != 400 }", NUMBERS, False),
    ("{ $.number[0] = 1e-3 }", NUMBERS, True),
    ("{ $.number[0] != 1e+3 }", NUMBERS, True),
    ("{ $.number[1] = 1000 }", NUMBERS, True),
    ("{ $.text > 100 }", NUMBERS, False),                              # numbers compare with numbers
    ("{ $.missing != 500 }", NUMBERS, False),                          # nothing to compare: no match
    ('{ ($.user.id = 2 && $.users[0].email = "John.Doe@example.com") || $.actions[2] = "GET" }', COMPOUND, False),
    ('{ ($.user.id = 1 && $.users[0].email = "John.Doe@example.com") || $.actions[2] = "GET" }', COMPOUND, True),
    ('{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = 1) && $.actions[2] = "DELETE" }',
     COMPOUND, True),
    ('{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = 1 && $.actions[2] = "nomatch" }',
     COMPOUND, False),                                                 # && binds tighter than ||
    ('{ $.actions[0] = "GET" && $.actions[1] = "PUT" && $.users[1].id = 3 }', COMPOUND, True),
    ("{ ($.user.id = 1) && ($.users[0].email NOT EXISTS) }", COMPOUND, False),
    ('{ $.eventType = "UpdateTrail" }', "not json at all UpdateTrail", False),
    ('{ $.eventType = "UpdateTrail" }', '"a JSON string"', False),
])
def test_json(pattern, event, expected):
    assert logfilter.matches(pattern, event) is expected


# -- space-delimited log events ---------------------------------------------------------------------------------

APACHE = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534'
APACHE_404 = '10.0.0.9 - - [10/Oct/2000:13:26:00 -0700] "GET /index.html HTTP/1.1" 404 209'


@pytest.mark.parametrize("pattern, expected", [
    ("[ip, user, username, timestamp, request, status_code, bytes]", [0, 1]),
    ("[ip, user, username, timestamp, request, status_code]", []),          # field count must match
    ("[ip, user, username, timestamp, request, status_code, bytes, more]", []),
    ('[ip, user, username, timestamp, request = "*html*", status_code = 4*, bytes]', [1]),
    ("[ip, user, username, timestamp, request, status_code = 404, bytes]", [1]),
    ("[ip, user, username, timestamp, request, status_code >= 400, bytes]", [1]),
    ("[ip, user, username, timestamp, request, status_code != 404, bytes]", [0]),
    ("[ip, user, username, timestamp, request = *.gif*, status_code, bytes > 1000]", [0]),
    ("[ip = 127.0.0.1, ...]", [0]),
    ("[..., status_code, bytes < 1000]", [1]),
    ("[ip, ..., bytes = 1534]", [0]),
    ("[ip, user, ..., status_code = 200, bytes]", [0]),
    ("[..., request = %index%, ...]", [1]),
    ("[ip, user, username = frank, ...]", [0]),
    ('[ip, user, username, timestamp = "10/Oct/2000:13:25:15 -0700", ...]', [0]),   # [...] is one field
    ("[ip, user, username, timestamp, request, status_code = 2* || status_code = 4*, bytes]", [0, 1]),
    ("[ip, user, username, timestamp, request, status_code = 2* && bytes > 1000, bytes]", [0]),
    ("[ip, user, username, timestamp, request, status_code = %2[0-9]{2}%, bytes]", [0]),
    ("[ip, user, username, timestamp, request, status_code = 4* || status_code = 5*, bytes]", [1]),
])
def test_space_delimited(pattern, expected):
    assert [i for i, e in enumerate([APACHE, APACHE_404]) if logfilter.matches(pattern, e)] == expected


def test_space_delimited_extracts_named_fields():
    got = logfilter.compile("[ip, user, username, timestamp, request, status_code, bytes]").extract(APACHE)
    assert got == {"$ip": "127.0.0.1", "$user": "-", "$username": "frank",
                   "$timestamp": "10/Oct/2000:13:25:15 -0700", "$request": "GET /apache_pb.gif HTTP/1.0",
                   "$status_code": "200", "$bytes": "1534"}


def test_event_fields_split_on_spaces_quotes_and_brackets():
    assert logfilter.event_fields('a  "b c" [d e] f\t"g \\"h\\""') == ["a", "b c", "d e", "f", 'g "h"']


# -- what AWS rejects ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", [
    "{ $.a = 1",
    "{ a = 1 }",
    "{ $ = 1 }",
    "{ $.a[x] = 1 }",
    '{ $.a > "x" }',
    "{ $.a = }",
    "{ $.a = 1 && }",
    "{ ($.a = 1 }",
    "{ $.a = 1 $.b = 2 }",
    "{ $.a IS MAYBE }",
    "{ $.a ! 1 }",
    "{ }",
    "[a, b",
    "[a, , b]",
    "[a = 1 b]",
    "[a, b > x]",
    "[a, c = 1 || d = 2]",
    "[a, ..., ..., ..., ..., ...]",
    '"unclosed phrase',
    "ERROR \"unclosed",
    "%ab(c)%",
    "%[a%",
    "%a% %b% %c% %d% %e% %f%",
    "a{b}",
    "x" * 1025,
])
def test_invalid_patterns_are_rejected(pattern):
    with pytest.raises(FilterPatternError):
        logfilter.compile(pattern)
