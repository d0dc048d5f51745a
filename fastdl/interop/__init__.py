"""Interoperation with other libraries: :mod:`fastdl.interop.torch` (PyTorch, an optional extra).

Nothing here is imported by ``import fastdl``; ``from fastdl.interop.torch import to_torch``
needs PyTorch (``pip install 'fastdl[torch]'``). The names and layouts the conversion uses
are in :mod:`fastdl.torch_layout`, which needs NumPy only.
"""
