"""46 — the promise by default: each chaos scenario on a fresh levee with its
default policies (peak_ewma, the windowed count rule, failures weighing in the
balancer at once, adaptive hedging, outlier ejection, revive probes), nothing
tuned but `timeouts.per_try` (and health checks where the scenario needs
them). Each test starts its own backends and its own levee, so that nothing
learnt in one scenario (a breaker's grown open time) helps another.

What is asserted are counts: POSTs lost (a POST that reached a misbehaving
backend is never replayed, so every one sent there is at risk), requests the
backends saw, successes after the backends came back. The bounds are far from
what the old defaults (round robin, hedging off, no revive) give: those lose
a POST for each of the first failures until the breaker's count opens it, and
after a total outage wait for the breaker's 30 s.
"""

import time

from harness import wait_for
from test_45_chaos import Load, describe, run_for, success

PER_TRY = "timeouts:\n  per_try: 1s\n"


def three_demos(h, bad_args):
    """b1 and b2 well, b3 misbehaving; fixed seeds: the same draws every run."""
    return [h.demo("b1", "--seed", "1"), h.demo("b2", "--seed", "2"),
            h.demo("b3", "--seed", "3", *bad_args)]


def config(bs, extra=""):
    text = "backends:\n" + "".join(f"  - id: {b.id}\n    url: {b.url}\n" for b in bs)
    return text + PER_TRY + extra


def requests_at(bs):
    return [b.stats()["requests"] for b in bs]


def lost(results):
    return [r for r in results if r[2] != 200]


def test_a_backend_answering_503_to_half_loses_almost_no_post(h):
    bs = three_demos(h, ("--error-rate", "0.5", "--error-status", "503"))
    lv = h.levee(config(bs))

    with Load(lv, clients=2, method="POST", body=b"p" * 200) as posts:
        run_for(2.5, posts)
    sent = posts.snapshot()
    with Load(lv, clients=2) as gets:
        run_for(1.5, gets)
    got = gets.snapshot()

    assert len(sent) >= 50, len(sent)
    # A POST that got a 503 is not replayed (it reached the backend). Its
    # first 503 weighs in peak_ewma at once: the next POSTs go to its peers.
    # The old defaults lost one for each failure until the count rule (5).
    assert len(lost(sent)) <= 2, describe(sent)
    assert all(r[2] in (200, 503) for r in sent), describe(sent)
    assert success(got) == 1.0, describe(got)


def test_a_hanging_backend_costs_gets_nothing_and_then_posts_nothing(h):
    bs = three_demos(h, ("--hang-rate", "0.2", "--hang-for", "10s"))
    lv = h.levee(config(bs))

    with Load(lv, clients=3) as gets:
        run_for(3, gets)
    got = gets.snapshot()
    hedges = metric(lv, "levee_hedges_total")
    before = requests_at(bs)
    with Load(lv, clients=2, method="POST", body=b"p" * 200) as posts:
        run_for(2, posts)
    sent = posts.snapshot()
    after = requests_at(bs)

    assert len(got) >= 100, len(got)
    # GETs that hung on b3 were hedged (auto: the backend's p95, at most
    # hedge_max before enough answers are known), well before per_try.
    assert success(got) == 1.0, describe(got)
    assert hedges >= 1, "no hedge was sent: the scenario is off"
    # The races b3 lost weighed in peak_ewma and the outlier detector: the
    # POSTs, which cannot be hedged, no longer go there. The old defaults
    # sent b3 a third of them and lost a fifth of those.
    assert len(sent) >= 40, len(sent)
    assert lost(sent) == [], describe(sent)
    assert after[2] == before[2], f"b3 still got {after[2] - before[2]} POSTs"
    assert sum(after) - sum(before) == len(sent), "a POST was sent twice"


def test_a_resetting_backend_loses_almost_no_post_and_duplicates_none(h):
    bs = three_demos(h, ("--reset-rate", "0.3"))
    lv = h.levee(config(bs))

    before = requests_at(bs)
    with Load(lv, clients=2, method="POST", body=b"p" * 300) as posts:
        run_for(3, posts)
    sent = posts.snapshot()
    after = requests_at(bs)

    assert len(sent) >= 60, len(sent)
    # A reset POST is lost (it may have been processed), never replayed: the
    # backends saw exactly one request per POST. Its first reset sends the
    # next POSTs elsewhere (the old defaults lost one per reset until the
    # breaker's count, 5, opened it).
    assert sum(after) - sum(before) == len(sent), (
        f"{len(sent)} POSTs made {sum(after) - sum(before)} requests at the backends")
    for r in lost(sent):
        assert r[2] == 502 and b"backend_reset" in r[3].body, r
    assert len(lost(sent)) <= 2, describe(sent)


def test_all_dead_then_back_resumes_without_a_check_or_the_breakers_time(h):
    bs = [h.demo("b1", "--seed", "1"), h.demo("b2", "--seed", "2"),
          h.demo("b3", "--seed", "3")]
    # Checks every 30 s and breakers open for 30 s (the default): without
    # revive probes, service would resume only after one of them.
    entries = "".join(f"  - id: {b.id}\n    url: {b.url}\n    health_check_enabled: true\n"
                      for b in bs)
    lv = h.levee("backends:\n" + entries + PER_TRY + """
health_check:
  interval: 30s
circuit_breaker:
  timeout: 30s
""")

    with Load(lv, clients=2) as load:
        run_for(0.5, load)
        for b in bs:
            b.stop()
        dead_at = time.monotonic()
        run_for(1.5, load)
        wait_for(lambda: sum(1 for r in load.snapshot() if r[0] > dead_at and r[2] == 503) >= 20,
                 timeout=20, interval=0.05, what="503s while every backend is dead")
        back_at = time.monotonic()
        for b in bs:
            b.start(port=b.port)
        wait_for(lambda: sum(1 for r in load.snapshot() if r[0] > back_at and r[2] == 200) >= 50,
                 timeout=10, interval=0.05, what="50 successes after the backends came back")
    results = load.snapshot()
    dead = [r for r in results if r[0] >= dead_at + 0.3 and r[1] <= back_at]
    assert dead and all(r[2] in (502, 503) for r in dead), describe(dead)
    after = [r for r in results if r[0] > back_at]
    assert sum(1 for r in after if r[2] == 200) >= 50, describe(after)
    assert time.monotonic() - back_at < 25, "resumed only after the breakers' open time"


def metric(lv, name):
    from harness import http_get
    body = http_get(lv.admin_port, "/metrics",
                    {"Host": f"127.0.0.1:{lv.admin_port}"}).body.decode()
    total = 0
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total
