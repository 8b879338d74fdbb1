from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from repro_shared.device import DeviceInfo, default_dtype, parse_dtype, seed_everything, select_device, set_threads
from repro_shared.errors import ReproError


def test_auto_is_cpu_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")


def test_auto_takes_the_gpu_of_this_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert select_device("auto") == torch.device("cuda", 1)
    assert select_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ReproError, match="only 2 CUDA"):
        select_device("cuda:2")


def test_explicit_cuda_without_cuda_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ReproError, match="CUDA is not available") as error:
        select_device("cuda")
    assert "--device cpu" in str(error.value)
    with pytest.raises(ReproError, match="unknown device"):
        select_device("tpu")


def test_dtype_policy(monkeypatch):
    assert default_dtype(torch.device("cpu")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert default_dtype(torch.device("cuda", 0)) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert default_dtype(torch.device("cuda", 0)) == torch.float32
    assert parse_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ReproError, match="unknown dtype"):
        parse_dtype("int3", torch.device("cpu"))


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist(), torch.nn.Linear(4, 2).weight.sum().item()


def test_same_seed_same_numbers_different_seed_different_numbers():
    seed_everything(7)
    first = _draws()
    seed_everything(7)
    assert _draws() == first
    seed_everything(8)
    assert _draws() != first


def test_threads():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        assert set_threads(None) == 1
        with pytest.raises(ReproError):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_device_info_records_cpu():
    info = DeviceInfo.describe(torch.device("cpu"), torch.float32)
    assert info.device == "cpu" and info.dtype == "float32" and info.torch_version == torch.__version__
