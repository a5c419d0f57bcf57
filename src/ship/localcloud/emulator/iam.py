"""IAM: whose an access key is, asked of the IAM backends that exist.

moto answers every request's "which account is this access key's" by looking the key up
in the IAM backend of every partition of every account, creating each backend on the way,
and a new IAM backend loads the ~1,300 AWS-managed policies: the first request after a
start built six of them (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-eusc), 0.6 s of
CPU, for a region in one partition. An access key lives in the backend that created it
(CreateAccessKey in that partition), so a backend that does not exist holds none: asking
only the existing ones gives the same answer and builds nothing.
"""

from __future__ import annotations

PATCHES = ["iam: an access key's account is looked up in the IAM backends that exist, "
           "instead of creating one per partition to ask it"]


def account_of(access_key: str) -> str:
    """The account whose IAM holds ``access_key`` (moto's default account when none does)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    for account_id, account in list(iam_backends.items()):
        # dict.values: the partitions' backends made so far (indexing would create the rest)
        for backend in list(dict.values(account)):
            if access_key in backend.access_keys:
                return account_id
    return DEFAULT_ACCOUNT_ID


def install() -> None:
    """moto's request handling imports ``get_account_id_from`` from ``moto.iam.models`` at
    each request, so replacing it there takes effect at once (idempotent)."""
    import moto.iam.models as models

    models.get_account_id_from = account_of
