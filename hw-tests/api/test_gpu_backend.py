"""The runtime worker with a GPU backend of llama.cpp (the GPU image variants, docs/image.md).

Runs only when CIVIAD_GPU_BIN names a civiad built with a GPU feature (`hw-tests/gpu-backend`
builds one with `--features vulkan` and runs this file): the default build and CI have no GPU
backend, and this test is skipped there. On a machine without a GPU the Vulkan build runs on
Mesa's lavapipe (a Vulkan device on the CPU; GGML_VK_VISIBLE_DEVICES=0 lets llama.cpp use
it); on a GPU box, on the GPU's Vulkan driver.

Checked: the worker reports a Vulkan (or CUDA) device and offloads the model's layers to it;
the memory-bandwidth endpoint then says `device: gpu` and gives no CPU bound; generation
through the official `openai` client works; with `gpu_layers = 0` the same build stays on
the CPU.
"""

from __future__ import annotations

import os
import re

import httpx
import openai
import pytest

from conftest import DEV_KEY, SMOL, start_civiad

GPU_BIN = os.environ.get("CIVIAD_GPU_BIN")
pytestmark = pytest.mark.skipif(not GPU_BIN, reason="CIVIAD_GPU_BIN not set (hw-tests/gpu-backend sets it)")


def where(server) -> dict:
    r = httpx.post(server.url + "/admin/system/memory-bandwidth", headers=server.headers(), timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def generate(server) -> str:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=DEV_KEY)
    out = client.chat.completions.create(
        model=SMOL, max_tokens=24, temperature=0,
        messages=[{"role": "user", "content": "Écrivez une phrase sur la mairie."}])
    assert out.usage is not None and out.usage.completion_tokens > 0, out
    return out.choices[0].message.content or ""


@pytest.mark.parametrize("gpu_layers", [999, 0])
def test_layers_go_where_configured(tmp_path, monkeypatch, gpu_layers):
    monkeypatch.setenv("CIVIAD_BIN", GPU_BIN)
    server = start_civiad(tmp_path, model=SMOL, model_options={"gpu_layers": gpu_layers})
    try:
        b = where(server)
        kinds = {d["name"]: d["kind"] for d in b["model"]["devices"]}
        gpus = [n for n, k in kinds.items() if k in ("gpu", "integrated_gpu")]
        assert gpus, f"no GPU backend device: {kinds}\n{server.log_tail()}"
        if gpu_layers:
            assert b["device"] == "gpu" and b["model"]["gpu_layers"] > 0, b
            assert b["decode_tokens_per_second_bound"] is None, b
            assert re.search(r"\b[1-9]\d* layers on a GPU", server.log.read_text(errors="replace")), server.log_tail()
        else:
            assert b["device"] == "cpu" and b["model"]["gpu_layers"] == 0, b
            assert b["decode_tokens_per_second_bound"] > 0, b
        assert generate(server).strip()
    finally:
        server.stop()
