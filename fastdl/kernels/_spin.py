"""Flags that threads hand each other without the GIL: atomic loads and stores, and spin-waits.

:func:`fastdl.kernels._threads.run_chunks` hands a chunk to a waiting thread and learns that
it has finished through a small ``int64`` array of *flags* (one per 64-byte cache line, so two
threads' flags never share a line). Each flag holds a generation number that only grows:
the thread that posts or finishes a job stores the job's number, the waiting thread spins
until the flag reaches it. Waiting this way, in compiled code with the GIL released, costs a
few microseconds; sleeping on a lock and being woken cost 50-200 µs per hand-over on the
2-vCPU KVM guest of PERFORMANCE.md, twice per call. Every spin has a budget, a number of
polls, after which the waiter goes to sleep on a lock instead (the caller's fallback), so a
thread never spins for long on a machine that has no core free for it.

The loads and stores are LLVM atomics (acquire / release): a plain load in a loop may be
hoisted out of it by the compiler and never see the other thread's store. The loop gives the
CPU no ``pause`` hint: on the KVM guest a spin of ``pause`` instructions made the LSTM step
1.2x slower instead of faster (one T 25 step of ``asv_bench``'s ``CharLSTMStep``: 25.0
against 20.5 ms without the hint), probably because the hypervisor takes a vCPU that pauses
in a loop for one waiting on a lock and gives its core away (KVM's pause-loop exiting).

Shapes: ``flags`` a 1-D C-contiguous ``int64`` array; ``i`` an index into it.
"""

from __future__ import annotations

from fastdl.kernels._jit import jit, numba

__all__ = [
    "FLAG_STRIDE",
    "load_acquire",
    "store_release",
    "post",
    "spin_until",
    "wait_for_post",
    "post_then_wait",
    "polls_per_us",
]

#: Flags sit this many int64s apart: one 64-byte cache line each.
FLAG_STRIDE = 8


def load_acquire(flags, i):
    """``flags[i]``, read atomically with acquire ordering (compiled code only)."""
    raise NotImplementedError("load_acquire is compiled-code only")


def store_release(flags, i, value):
    """``flags[i] = value``, written atomically with release ordering (compiled code only)."""
    raise NotImplementedError("store_release is compiled-code only")


if numba is not None:
    from numba import types
    from numba.extending import intrinsic

    def _flag_pointer(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        return builder.gep(ary.data, [index])

    @intrinsic
    def load_acquire(typingctx, flags, i):  # noqa: F811 (the compiled version of the stub)
        if not (isinstance(flags, types.Array) and flags.dtype == types.int64):
            return None

        def codegen(context, builder, signature, args):
            ptr = _flag_pointer(context, builder, signature, args)
            return builder.load_atomic(ptr, "acquire", 8)

        return types.int64(flags, i), codegen

    @intrinsic
    def store_release(typingctx, flags, i, value):  # noqa: F811
        if not (isinstance(flags, types.Array) and flags.dtype == types.int64):
            return None

        def codegen(context, builder, signature, args):
            ptr = _flag_pointer(context, builder, signature, args)
            v = context.cast(builder, args[2], signature.args[2], types.int64)
            builder.store_atomic(v, ptr, "release", 8)
            return context.get_dummy_value()

        return types.void(flags, i, value), codegen


@jit
def post(flags, i, value):
    """Store ``value`` into ``flags[i]`` (release), with the GIL released around the store."""
    store_release(flags, i, value)


@jit
def spin_until(flags, first, stride, count, value, polls):
    """Spin until each of the ``count`` flags ``flags[first + k·stride]`` holds at least
    ``value``, polling at most ``polls`` times; return whether they all did."""
    k = 0
    for _ in range(polls):
        while k < count and load_acquire(flags, first + k * stride) >= value:
            k += 1
        if k == count:
            return True
    return False


@jit
def wait_for_post(flags, i, value, polls, delay_polls):
    """Spin (at most ``polls`` polls) until ``flags[i]`` reaches ``value``, then ``delay_polls``
    polls more; return whether it did. The delay is part of the same call so the GIL stays
    released through it: the poster, who holds the GIL after posting, is by then in its own
    compiled kernel and not holding it (a thread that finds the GIL taken sleeps)."""
    if not spin_until(flags, i, 0, 1, value, polls):
        return False
    spin_until(flags, i, 0, 1, 2**62, delay_polls)
    return True


@jit
def post_then_wait(flags, i, value, wait_i, wait_value, polls, delay_polls):
    """Store ``value`` into ``flags[i]``, then :func:`wait_for_post` on ``flags[wait_i]``: one
    call, so the GIL is not taken between the store and the wait (whoever sees the store
    finds it free)."""
    store_release(flags, i, value)
    return wait_for_post(flags, wait_i, wait_value, polls, delay_polls)


def polls_per_us(flags, i: int) -> float:
    """How many unsuccessful polls of :func:`spin_until` take a microsecond here (measured
    on ``flags[i]``, which must stay below 2**62 meanwhile)."""
    import time

    spin_until(flags, i, 0, 1, 2**62, 10)  # compiled before the clock starts
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        spin_until(flags, i, 0, 1, 2**62, 20_000)
        best = min(best, time.perf_counter() - start)
    return 20_000 / max(best * 1e6, 1e-3)
