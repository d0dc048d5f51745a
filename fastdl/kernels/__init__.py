"""Stateless array-in/array-out kernels: one family a file, NumPy twin first, numba twin second.

The public name of each kernel (``conv2d_forward``, ...) dispatches between the twins; see
:func:`fastdl.kernels._jit.pair`. Only this package imports numba.
"""
