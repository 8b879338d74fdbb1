"""Compatibility layer that lets auto_LiRPA 0.3 (the only PyPI release) run on torch 2.x and numpy 2.

auto_LiRPA 0.3 was written for torch < 1.13 and numpy < 1.24. On today's stack it breaks in five places,
listed below. Every patch below is installed only when the thing it replaces is missing,
so on a newer auto_LiRPA / older torch the layer is a no-op. Import auto_LiRPA only through `import_auto_lirpa()`.
"""

from __future__ import annotations

import sys
import types
from functools import cache


def _patch_numpy_arraysetops() -> None:
    """numpy 2 removed `numpy.lib.arraysetops`; auto_LiRPA 0.3 imports `isin` from it (unused)."""
    import numpy as np

    try:
        import numpy.lib.arraysetops
    except ImportError:
        module = types.ModuleType("numpy.lib.arraysetops")
        module.isin = np.isin
        sys.modules["numpy.lib.arraysetops"] = module


def _patch_onnx_opset_setter() -> None:
    """torch 2 removed `torch.onnx.symbolic_helper._set_opset_version`, which auto_LiRPA 0.3 imports at top level."""
    import torch.onnx.symbolic_helper as symbolic_helper

    if hasattr(symbolic_helper, "_set_opset_version"):
        return
    try:
        from torch.onnx._internal.torchscript_exporter._globals import GLOBALS  # torch >= 2.9 location
    except ImportError:  # pragma: no cover - older torch 2.x
        from torch.onnx._globals import GLOBALS

    def _set_opset_version(version: int) -> None:
        GLOBALS.export_onnx_opset_version = version

    symbolic_helper._set_opset_version = _set_opset_version


def _patch_node_subscript() -> None:
    """torch 2 graph nodes are no longer subscriptable (`node['value']`); auto_LiRPA 0.3's parse_graph relies on it."""
    import torch
    import torch.onnx.symbolic_helper as symbolic_helper

    if not hasattr(torch._C.Node, "__getitem__"):
        torch._C.Node.__getitem__ = lambda self, key: symbolic_helper._node_get(self, key)


def _patch_torch_six() -> None:
    """torch 2 removed `torch._six`; auto_LiRPA 0.3 uses `torch._six.string_classes` in `register_parameter`."""
    import torch

    if not hasattr(torch, "_six") and "torch._six" not in sys.modules:
        six = types.ModuleType("torch._six")
        six.string_classes = (str, bytes)
        sys.modules["torch._six"] = six
        torch._six = six


def _patch_bounded_module(bounded_module_class: type) -> None:
    """Fix two BoundedModule incompatibilities: `_named_members(remove_duplicate=...)` and sparse-alpha indexing.

    torch 2 passes `remove_duplicate` to `_named_members` (from `.parameters()`), which 0.3's override rejects.
    0.3 also has an indentation bug that breaks α-CROWN when > 90 % of a layer's ReLUs are unstable; disabling
    `sparse_features_alpha` (a speed option only) avoids it.
    """
    named_members = bounded_module_class._named_members
    if "remove_duplicate" not in named_members.__code__.co_varnames:

        def _named_members(self, get_members_fn, prefix="", recurse=True, remove_duplicate=True):
            return named_members(self, get_members_fn, prefix=prefix, recurse=recurse)

        bounded_module_class._named_members = _named_members
    if getattr(bounded_module_class, "_certified_pruning_patched", False):
        return
    original_init = bounded_module_class.__init__

    def __init__(self, model, global_input, bound_opts=None, *args, **kwargs):
        bound_opts = dict(bound_opts or {})
        bound_opts.setdefault("sparse_features_alpha", False)
        original_init(self, model, global_input, bound_opts, *args, **kwargs)

    bounded_module_class.__init__ = __init__
    bounded_module_class._certified_pruning_patched = True


@cache
def import_auto_lirpa() -> types.ModuleType:
    """Install the patches a 0.3 release needs, then import and return the `auto_LiRPA` module."""
    import warnings

    _patch_numpy_arraysetops()
    _patch_onnx_opset_setter()
    _patch_node_subscript()
    _patch_torch_six()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import auto_LiRPA
    version = getattr(auto_LiRPA, "__version__", "0")
    if version.split(".")[:2] == ["0", "3"] or version.startswith("0.2"):
        _patch_bounded_module(auto_LiRPA.BoundedModule)
    return auto_LiRPA
