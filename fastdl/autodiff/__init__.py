"""Reverse-mode automatic differentiation over arrays: the book's ``NumberWithGrad``, grown up.

A teaching module (NumPy only). The layers of :mod:`fastdl` do not use it: they keep the
book's hand-written ``Operation`` backward passes, and this module is the independent check
that those gradients are right (see ``examples/autodiff_network.py``).

The story
---------
The book's autodiff chapter wraps a Python number in a ``NumberWithGrad`` that remembers the
numbers it was made from (``depends_on``) and how (``creation_op``: ``"add"`` or ``"mul"``).
``backward`` then walks back recursively: each number adds the incoming gradient to its
``grad`` and calls ``backward`` on its parents with the derivative of its creation op. So

>>> from fastdl.autodiff import NumberWithGrad
>>> a = NumberWithGrad(3)
>>> b = a * 4
>>> c = b + 3
>>> d = c * (a + 2)
>>> d.backward()
>>> float(a.grad)  # d = (4a + 3)(a + 2), dd/da = 8a + 11
35.0

works: ``a`` is used twice and its two gradients add up. Growing that idea into something a
network can be written in takes four steps, each visible in :mod:`fastdl.autodiff.tensor`:

1. **Arrays, not numbers.** :class:`Tensor` holds an ``ndarray`` ``value`` and an ``ndarray``
   ``grad`` of the same shape; ``NumberWithGrad(3)`` is simply a tensor of shape ``()``.
   Operations are ``+ - * / @``, unary ``-``, ``** constant``, ``sum``, ``mean``, ``exp``,
   ``log``, ``tanh``, ``sigmoid``, ``relu``, ``reshape`` and ``T``.
2. **One closure per operation instead of a creation-op string.** Each operation computes its
   value and defines, right next to it, ``backward(g)``: the gradient of each operand given
   ``g``, the gradient of the output (micrograd's layout). A new operation is one new method;
   ``backward`` needs no ``if creation_op == ...`` branch.
3. **A topological order instead of recursion.** The recursive walk hands a node's *running
   total* to its parents every time the node is reached. That is right when only leaves are
   reused (as in the book's example), but when an intermediate value is used twice its
   ancestors receive the sum more than once: for ``b = a * 2``, ``c = b * b`` at ``a = 3`` it
   gives ``dc/da = 36`` instead of ``8a = 24``. :meth:`Tensor.backward` instead sorts the
   graph so that every tensor comes after all tensors computed from it, and visits each once:
   by the time a tensor passes its gradient on, that gradient is complete. (Also no recursion
   limit on deep graphs.)
4. **Broadcasting.** ``x @ W + B`` adds a ``(H,)`` bias to an ``(N, H)`` array: NumPy copies
   ``B`` along the batch axis. The gradient of a copied value is the sum of the gradients of
   its copies, so each element-wise backward sums back to its operand's shape
   (:func:`unbroadcast`).

The gradients are checked against central differences (:func:`check_grad`) in
``tests/test_autodiff.py``.

Examples
--------
A two-layer network and its loss, differentiated with respect to every parameter:

>>> import numpy as np
>>> from fastdl.autodiff import Tensor
>>> rng = np.random.default_rng(0)
>>> x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
>>> W1, B1 = Tensor(rng.standard_normal((3, 4))), Tensor(np.zeros(4))
>>> W2, B2 = Tensor(rng.standard_normal((4, 1))), Tensor(np.zeros(1))
>>> loss = (((x @ W1 + B1).tanh() @ W2 + B2 - y) ** 2).mean()
>>> loss.backward()
>>> W1.grad.shape, B2.grad.shape
((3, 4), (1,))
"""

from fastdl.autodiff.gradcheck import check_grad, numerical_grad
from fastdl.autodiff.tensor import NumberWithGrad, Tensor, unbroadcast

__all__ = ["Tensor", "NumberWithGrad", "unbroadcast", "check_grad", "numerical_grad"]
