"""The ELB data plane: local listeners that behave like Application Load Balancer listeners.

One concern per module:

* ``balancers``    LoadBalancers: the registry of listeners, synced from the emulator (rules,
                   target groups, attributes), request counts per target group, host names.
* ``healthcheck``  target health checks with each target group's settings.
* ``listener``     a listener's life: its loopback port, event loop thread, timers, stats.
* ``client``       one client connection: input, framing, one exchange at a time, backpressure.
* ``exchange``     one request: ALB's checks, desync mitigation, the rule, answers, the end.
* ``forwarding``   the target side of an exchange: connect, retry or hold, relay the response.
* ``tunnel``       bytes both ways after a WebSocket upgrade.
* ``upstream``     connections to targets and their keep-alive pool.
* ``framing``      HTTP/1.1 message framing on llhttp (httptools), with ALB's limits on top;
                   ``framing_h11`` the same on h11, for the benchmark's parser comparison.
* ``desync``       request classification as http-desync-guardian does it, and the modes.
* ``rewrite``      X-Forwarded-*, X-Amzn-Trace-Id, hop-by-hop and framing headers.
* ``pages``        the balancer's own answers: error pages, fixed responses, redirects.
* ``rules``        listener rules: conditions, actions, matching (pure).
* ``targets``      target groups, target choice, weights and sticky cookies (pure).
* ``routing``      a listener's configuration and routing state (turns, in-flight counts).
* ``hostnames``    http://<load balancer name>.elb.localhost:<emulator port>/.
"""
