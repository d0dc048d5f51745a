"""Interrupting a training run at a chosen batch, as a crash or a kill would (resume tests)."""


class Stop(Exception):
    """Raised in place of the interrupted training batch."""


def fail_at_batch(net, n: int) -> None:
    """Make ``net``'s ``n``-th call of ``train_batch`` (1-based) raise :class:`Stop`; the
    calls before it train as usual."""
    calls = {"n": 0}
    real = net.train_batch

    def failing(xb, yb):
        calls["n"] += 1
        if calls["n"] == n:
            raise Stop
        return real(xb, yb)

    net.train_batch = failing
