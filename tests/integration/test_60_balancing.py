"""60 — balancing across three demo backends, one worker, one keep-alive client
connection (least_connections: concurrent clients and one slow backend)."""

import threading
import time
from collections import Counter

import pytest

from adminutil import backends_health
from harness import RawClient
from scripted import serve


def three(h, *slow_args):
    """Demo backends b1, b2, b3 (b3 gets slow_args)."""
    return h.demo("b1"), h.demo("b2"), h.demo("b3", *slow_args)


def config(policy, backends, weights=None):
    # No hedging (auto by default): a copy would be a pick the balancer did
    # not make, and a loaded machine makes some answers slower than hedge_min.
    lines = [f"load_balancing: {policy}", "workers: 1", "retry:", "  hedge_after: off",
             "backends:"]
    for i, b in enumerate(backends):
        lines += [f"  - id: {b.id}", f"    url: {b.url}"]
        if weights:
            lines.append(f"    weight: {weights[i]}")
    return "\n".join(lines) + "\n"


def picks(lv, n):
    """The backend ids answering n sequential requests on one connection."""
    c = lv.client()
    out = []
    for i in range(n):
        resp = c.get(f"/lb/{i}")
        assert resp.status == 200, resp
        out.append(resp.headers.get("x-backend-id"))
    return out


def test_round_robin_cycles_backends_in_order(h):
    backends = three(h)
    lv = h.levee(config("round_robin", backends))

    seq = picks(lv, 30)

    order = ["b1", "b2", "b3"]
    start = order.index(seq[0])
    expected = [order[(start + i) % 3] for i in range(30)]
    assert seq == expected


def test_weighted_is_exact_and_smooth(h):
    backends = three(h)
    lv = h.levee(config("weighted", backends, weights=[1, 2, 3]))

    seq = picks(lv, 600)

    assert Counter(seq) == {"b1": 100, "b2": 200, "b3": 300}
    # smooth weighted round robin never sends 3 in a row here (1:2:3 gives
    # e.g. b3 b2 b1 b3 b2 b3 ...); a naive expansion (b3 b3 b3 b2 b2 b1) does
    longest = max(len(run) for run in runs(seq))
    assert longest <= 2, f"a run of {longest} picks of one backend: not smooth"


def runs(seq):
    out, cur = [], [seq[0]]
    for x in seq[1:]:
        if x == cur[-1]:
            cur.append(x)
        else:
            out.append(cur)
            cur = [x]
    out.append(cur)
    return out


def test_random_is_roughly_uniform_and_not_a_cycle(h):
    backends = three(h)
    lv = h.levee(config("random", backends))

    seq = picks(lv, 600)

    counts = Counter(seq)
    # Binomial(600, 1/3): mean 200, sd 11.5; [120, 280] is 6.9 sd wide each side
    # (a correct implementation fails it with probability < 1e-10).
    for b in ("b1", "b2", "b3"):
        assert 120 <= counts[b] <= 280, counts
    # Random picks repeat the previous backend ~1/3 of the time (~200 of 599);
    # a cycle never does. 100 is more than 8 sd below the mean.
    repeats = sum(1 for a, b in zip(seq, seq[1:]) if a == b)
    assert repeats >= 100, f"only {repeats} repeats in 600 picks: not random"


@pytest.mark.parametrize("policy", ["least_connections", "power_of_two", "peak_ewma"])
def test_load_aware_policies_avoid_the_busy_backend(h, policy):
    backends = three(h, "--latency", "300ms")
    lv = h.levee(config(policy, backends))
    counts = Counter()
    errors = []
    lock = threading.Lock()

    def client_loop(k):
        try:
            c = RawClient(lv.port)
            try:
                for i in range(30):
                    resp = c.get(f"/lc/{k}/{i}")
                    assert resp.status == 200, resp
                    with lock:
                        counts[resp.headers.get("x-backend-id")] += 1
            finally:
                c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert not errors, errors
    assert sum(counts.values()) == 180
    # Round robin or random would give b3 a third (60); these see b3 busy with
    # 300 ms requests (or slow) and send it only a few.
    assert counts["b3"] * 2 <= min(counts["b1"], counts["b2"]), counts


def test_peak_ewma_avoids_a_slow_backend_even_for_one_sequential_client(h):
    """One request at a time: nothing is ever in flight when levee picks, so
    least_connections cannot tell a slow backend from a fast one (it gives b3
    a third). peak_ewma remembers b3's latency: once it has answered, it loses
    every pair it is drawn into until its estimate decays (10 s time
    constant: far longer than this test)."""
    backends = three(h, "--latency", "100ms")
    lv = h.levee(config("peak_ewma", backends))

    seq = picks(lv, 90)

    counts = Counter(seq)
    assert counts["b1"] + counts["b2"] + counts["b3"] == 90, counts
    # b3 is tried while unknown (it costs nothing then), at most once or twice
    assert counts["b3"] <= 3, counts
    # b1 and b2 each win at least the pairs drawn with b3 (a third of 90,
    # sd 4.5); between them the faster of the moment wins
    assert counts["b1"] >= 15 and counts["b2"] >= 15, counts
    # the estimates, as the admin port shows them (b3's decays by exp(-t/10 s))
    health = backends_health(lv)
    assert health["b3"]["latency_ms"]["ewma"] > 50, health["b3"]
    assert health["b1"]["latency_ms"]["ewma"] < 50, health["b1"]


def test_peak_ewma_sends_a_backend_that_timed_out_nothing_for_a_while(h):
    """A per-try timeout is a sample of the whole wait: the backend's estimate
    jumps to it (500 ms against ~1 ms for the others), and it loses every pair
    it is drawn into until that decays (about a minute). Round robin would go
    on sending it a third; one timeout does not open its breaker. s3 starts
    as the fastest (s1 and s2 take 10 ms), so that it wins every pair it is
    drawn into and the first requests after it starts hanging find it."""
    hanging = threading.Event()

    def answer(id):
        def respond(conn, req):
            if hanging.is_set() and id == "s3":
                conn.hang(limit=30)
                return
            if id != "s3":
                time.sleep(0.01)
            conn.respond(200, body=id.encode(), headers=[("X-Backend-Id", id)])
        return serve(respond)

    backends = [h.scripted(answer(f"s{i}"), id=f"s{i}") for i in (1, 2, 3)]
    lv = h.levee(config("peak_ewma", backends) + "timeouts:\n  per_try: 500ms\n")
    assert set(picks(lv, 30)) == {"s1", "s2", "s3"}  # every backend known, all fast

    hanging.set()
    c = lv.client()
    seen = len(backends[2].requests)
    for i in range(30):  # until one request lands on s3, times out and is retried
        resp = c.get(f"/t/{i}")
        assert resp.status == 200, resp
        if len(backends[2].requests) > seen:
            break
    assert len(backends[2].requests) == seen + 1, "no request reached s3"
    assert resp.headers.get("x-backend-id") in ("s1", "s2"), resp

    after = Counter(picks(lv, 30))
    assert after["s3"] == 0 and len(backends[2].requests) == seen + 1, after
