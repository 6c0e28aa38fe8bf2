"""The CUDA paths (issue 16): training (fp32 and bf16, packed and unpacked, LoRA, Adafactor), exact resume (one
process, and FSDP2 under torchrun), FSDP2 under torchrun against one process, the eval engine against the CPU.

Tests marked `cuda` skip, saying why, where torch sees no CUDA device (tests/conftest.py); bench/cuda_check.sh
runs them on a GPU machine and prints one summary. Each check is a function of the device, so that its CPU half
(the same harness on the CPU, bf16 there meaning CPU autocast) runs here as an ordinary test and the harness is
proven before any GPU time is spent. The untrained tiny presets throughout; SmolLM2 only where its package is on
the machine (test_cuda_smollm2, skipped otherwise).

Settings, and why:
  - TF32 off (torch.backends flags in this process, NVIDIA_TF32_OVERRIDE=0 for launched processes) wherever a CUDA
    result is compared with the CPU's or with another CUDA run in fp32: TF32 matmuls keep 10 mantissa bits.
  - Exact resume on CUDA: torch.use_deterministic_algorithms(True) in the training processes and
    CUBLAS_WORKSPACE_CONFIG=:4096:8 (cuBLAS refuses deterministic mode without it): without them two identical
    runs may differ in the last bits, since some CUDA backward kernels accumulate with atomic adds (e.g. index_put_
    with accumulate=True, the backward of SFTLoss's boolean indexing of target positions).
Tolerances (stated here, checked below): bf16 autocast loss curve within BF16_CURVE_REL of fp32's (relative, each
step); packed vs unpacked per-example losses within PACKED_REL (fp32: 1e-4; bf16: 3e-2); CUDA vs CPU option
log-likelihoods within DEVICE_LOGPROB_ABS plus DEVICE_FP32_FACTOR times the CPU's own fp32 error (its fp32 result
against float64, measured in the test: near 0 for tiny-llama, large for the lively tiny-t5; fp32, TF32 off); greedy
generations identical in fp32.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from flanlab.eval.engine import Engine, GenerationSettings
from flanlab.models import LoadedModel, load
from flanlab.train import load_train_config, train
from flanlab.train.data import tokenize_pairs
from flanlab.train.loss import SFTLoss
from flanlab.train.packing import collate, make_row, pack

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from test_engine import make_items  # noqa: E402
from test_packing import _pairs  # noqa: E402
from test_train import write_mixture  # noqa: E402
from test_train_resume import killed_while_saving, logged_losses  # noqa: E402

REPO = Path(__file__).parents[1]
BF16_CURVE_REL = 0.05
PACKED_REL = {"fp32": 1e-4, "bf16": 3e-2}
DEVICE_LOGPROB_ABS = 1e-3
# The lively tiny-t5 (weights x3, for varied outputs) has logits near 250 and option log-likelihoods near -4,000, where
# fp32 alone is off by hundredths: on an H100 (2026-12-05, bench/cuda_check.sh) its CPU fp32 result was 0.045 from
# float64, the CUDA one 0.067 from the CPU's and 0.19 from float64 (whose CUDA and CPU results agreed to 1e-4 relative
# in the raw model); tiny-llama's gaps were all under 1e-5. So the device may be off by this many times the CPU's own
# fp32 error, on top of DEVICE_LOGPROB_ABS; a masking or batching defect moves a log-likelihood by far more.
DEVICE_FP32_FACTOR = 8
FIELDS = dict(steps=6, batch_size=8, lr=1e-2, optimizer="adamw", max_input_len=64, max_target_len=32, pack_len=128,
              pack_target_len=64, save_every=0, threads=1)


# ----------------------------------------------------------------------------------------------------------
# helpers shared by the CPU and CUDA halves


def losses_of(run: Path) -> list[float]:
    return [loss for _, loss in logged_losses(run)]


def curve_gap(curve: list[float], reference: list[float]) -> float:
    """The largest relative difference between two loss curves, step by step (inf if their lengths differ or a
    loss is not finite)."""
    if len(curve) != len(reference) or not all(math.isfinite(x) for x in curve + reference):
        return math.inf
    return max((abs(a - b) / max(abs(b), 1e-12) for a, b in zip(curve, reference)), default=0.0)


def train_run(tmp_path: Path, name: str, model: str, device: str, **fields) -> Path:
    data = tmp_path / "mix" if (tmp_path / "mix").is_dir() else write_mixture(tmp_path / "mix")
    config = dict(FIELDS, model=model, data=str(data), output_dir=str(tmp_path / name), device=device)
    config.update(fields)
    return train(load_train_config(None, None, **config), progress=False)


@contextlib.contextmanager
def no_tf32():
    """fp32 matmuls and convolutions in full fp32 on CUDA (TF32 off), restored afterwards."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def subprocess_env(**extra) -> dict:
    """The environment for a launched flanlab process: this checkout first on PYTHONPATH, kept what was there."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1", **extra)


# --- precision ------------------------------------------------------------------------------------------------


def check_bf16_close_to_fp32(tmp_path: Path, model: str, device: str) -> None:
    """fp32 and bf16 autocast runs of the same config: finite losses, falling, and the bf16 curve close to fp32's."""
    runs = {p: train_run(tmp_path, p, model, device, precision=p) for p in ("fp32", "bf16")}
    for precision, run in runs.items():  # the summary says what ran
        summary = json.loads((run / "summary.json").read_text())
        assert (summary["precision"], summary["device"]) == (precision, device)
    fp32, bf16 = losses_of(runs["fp32"]), losses_of(runs["bf16"])
    gap = curve_gap(bf16, fp32)
    print(f"{model} on {device}: fp32 {fp32}\n  bf16 {bf16}\n  largest relative gap {gap:.2e}")
    assert len(fp32) == len(bf16) == FIELDS["steps"]
    assert all(math.isfinite(x) for x in fp32 + bf16)
    assert fp32[-1] < fp32[0] and bf16[-1] < bf16[0]
    assert gap <= BF16_CURVE_REL, f"bf16 loss curve {gap:.2e} away from fp32's (tolerance {BF16_CURVE_REL})"


# --- packed vs unpacked ---------------------------------------------------------------------------------------


def per_example_losses(loss_module, rows, kind: str, pad_id: int, packed: bool, device: str, precision: str):
    """Summed loss per example of `rows`, in row-major example order, computed on `device` at `precision`."""
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v
             for k, v in collate(rows, kind, pad_id, packed=packed).items()}
    autocast = torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        losses, owner = loss_module(batch, per_token=True)
    sums: dict[int, float] = {}
    for value, key in zip(losses.double().tolist(), owner.tolist()):
        sums[key] = sums.get(key, 0.0) + value
    return [sums[k] for k in sorted(sums)]


def check_packed_equals_unpacked(model: str, device: str, precision: str) -> None:
    """The same examples packed several to a row and one to a row give the same per-example losses."""
    lm = load(model, device=device, dtype=torch.float32)
    with torch.no_grad():  # the tiny models are random: make their outputs depend strongly on the context
        for p in lm.model.parameters():
            p.mul_(3.0)
    kind = lm.kind
    data = tokenize_pairs(_pairs(24), lm.tokenizer, kind, max_input_len=64, max_target_len=24)
    start = getattr(lm.model.config, "decoder_start_token_id", None)
    capacity = (160,) if kind == "causal" else (128, 64)
    groups = pack(list(range(len(data))), data.lengths(), capacity, max_open=4)
    assert len(groups) < len(data) / 2, "the check needs several examples per packed row"
    packed_rows = [make_row(kind, [(data.first[i], data.second[i]) for i in g], start) for g in groups]
    single_rows = [make_row(kind, [(data.first[i], data.second[i])], start) for g in groups for i in g]
    loss = SFTLoss(lm.model, kind).eval()
    pad = lm.tokenizer.pad_token_id
    packed = per_example_losses(loss, packed_rows, kind, pad, True, device, precision)
    unpacked = []
    for i in range(0, len(single_rows), 7):
        unpacked += per_example_losses(loss, single_rows[i : i + 7], kind, pad, False, device, precision)
    assert len(packed) == len(unpacked) == len(data)
    gap = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(packed, unpacked))
    print(f"{model} on {device} ({precision}): packed vs unpacked, largest relative gap {gap:.2e}")
    assert all(math.isfinite(v) for v in packed + unpacked)
    assert gap <= PACKED_REL[precision]
    assert len({round(v, 3) for v in unpacked}) > len(unpacked) // 2  # not trivially equal: examples differ


# --- FSDP2 through torchrun -----------------------------------------------------------------------------------


def check_fsdp2_torchrun_matches_single(tmp_path: Path, device: str, nproc: int) -> None:
    """`torchrun --nproc_per_node N -m flanlab.cli train` with FSDP2 selected through accelerate's variables trains
    like one plain process on the same global batch (fp32: losses and weights)."""
    fields = dict(save_every=3, precision="fp32")
    single = train_run(tmp_path, "single", "tiny-llama", device, grad_accum=nproc, **fields)
    config = tmp_path / "fsdp.yaml"
    config.write_text(yaml.safe_dump(dict(FIELDS, model="tiny-llama", data=str(tmp_path / "mix"), device=device,
                                          output_dir=str(tmp_path / "fsdp"), grad_accum=1, **fields)))
    env = subprocess_env(ACCELERATE_USE_FSDP="true", FSDP_VERSION="2", NVIDIA_TF32_OVERRIDE="0")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "flanlab.cli", "train", str(config), "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{nproc} process(es) (fsdp)" in proc.stderr, proc.stderr[-3000:]
    fsdp = tmp_path / "fsdp"
    summary = json.loads((fsdp / "summary.json").read_text())
    assert summary["processes"] == nproc and summary["parallelism"] == "fsdp"
    one, many = losses_of(single), losses_of(fsdp)
    print(f"FSDP2 x{nproc} on {device}: {many}\n  single process: {one}\n"
          f"  largest relative gap {curve_gap(many, one):.2e}")
    assert len(one) == len(many) == FIELDS["steps"]
    assert curve_gap(many, one) <= 1e-5
    ours = load_file(str(fsdp / "model" / "model.safetensors"))
    theirs = load_file(str(single / "model" / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in ours)


DETERMINISTIC = "import torch\ntorch.use_deterministic_algorithms(True)\n"
TRAIN_PROGRAM = DETERMINISTIC + ("import sys\nfrom flanlab.train import load_train_config, train\n"
                                 "train(load_train_config(sys.argv[1]), progress=False)\n")


def check_fsdp2_torchrun_resume(tmp_path: Path, device: str, nproc: int) -> None:
    """FSDP2 under torchrun: process 0 SIGKILLed while writing the step-6 checkpoint, relaunched, ends with the
    weights (torch.equal) and logged losses of an uninterrupted launch (deterministic algorithms, fp32)."""
    data = write_mixture(tmp_path / "mix")
    fields = dict(FIELDS, model="tiny-llama", data=str(data), device=device, precision="fp32", steps=8, save_every=3,
                  keep_checkpoints=3, dropout=0.1, schedule="cosine", warmup_steps=2)
    env = subprocess_env(ACCELERATE_USE_FSDP="true", FSDP_VERSION="2", CUBLAS_WORKSPACE_CONFIG=":4096:8")

    def launch(name: str, program: str, script_name: str) -> subprocess.CompletedProcess:
        config, script = tmp_path / f"{name}.yaml", tmp_path / script_name
        config.write_text(yaml.safe_dump(dict(fields, output_dir=str(tmp_path / name))))
        script.write_text(program)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               str(script), str(config)]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    ref = launch("ref", TRAIN_PROGRAM, "train.py")
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = launch("killed", DETERMINISTIC + killed_while_saving(6), "killed_while_saving.py")
    assert killed.returncode != 0, "the run was meant to die while writing its step-6 checkpoint"
    resumed = launch("killed", TRAIN_PROGRAM, "train.py")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "(step 3)" in resumed.stderr, resumed.stderr[-3000:]
    assert json.loads((tmp_path / "killed" / "summary.json").read_text())["parallelism"] == "fsdp"
    ours = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    theirs = load_file(str(tmp_path / "ref" / "model" / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), f"{name} differs after resume"
    assert logged_losses(tmp_path / "killed") == logged_losses(tmp_path / "ref")


def check_exact_resume(tmp_path: Path, device: str) -> None:
    """Checkpoint, SIGKILL while writing the next one, resume: weights torch.equal to an uninterrupted run (the
    device's default precision: bf16 autocast on CUDA; dropout on, so that the device's generator matters).
    Deterministic algorithms and CUBLAS_WORKSPACE_CONFIG=:4096:8 in every training process (module docstring)."""
    data = write_mixture(tmp_path / "mix")
    env = subprocess_env(CUBLAS_WORKSPACE_CONFIG=":4096:8")
    fields = dict(model="tiny-llama", steps=12, batch_size=8, grad_accum=2, lr=1e-2, dropout=0.1, optimizer="adamw",
                  schedule="cosine", warmup_steps=2, max_input_len=64, max_target_len=32, pack_len=128,
                  save_every=4, keep_checkpoints=3, threads=1, device=device, data=str(data))

    def run(name: str, program: str) -> subprocess.CompletedProcess:
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump(dict(fields, output_dir=str(tmp_path / name))))
        return subprocess.run([sys.executable, "-c", program, str(config)], env=env, capture_output=True, text=True,
                              timeout=300)

    ref = run("ref", TRAIN_PROGRAM)
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = run("killed", DETERMINISTIC + killed_while_saving(8))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = run("killed", TRAIN_PROGRAM)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "(step 4)" in resumed.stderr
    ours = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    theirs = load_file(str(tmp_path / "ref" / "model" / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), f"{name} differs after resume"
    assert logged_losses(tmp_path / "killed") == logged_losses(tmp_path / "ref")


# --- the eval engine ------------------------------------------------------------------------------------------


def lively_pair(model: str, device: str, scale: float, dtype=torch.float32) -> tuple[LoadedModel, LoadedModel]:
    """A tiny preset with its weights scaled up (varied outputs) on the CPU, and the same weights on `device`."""
    cpu = load(model, device="cpu", dtype=torch.float32)
    with torch.no_grad():
        for p in cpu.model.parameters():
            p.mul_(scale)
    other = copy.deepcopy(cpu.model).to(device=device, dtype=dtype).eval()
    return cpu, LoadedModel(model=other, tokenizer=cpu.tokenizer, kind=cpu.kind, name=f"{model} ({device})",
                            untrained=True)


RANK_CHOICES = (" A", " B", " a longer option")
STOP_SETTINGS = GenerationSettings(max_new_tokens=24, stop=("\n", "."))


def engine_outputs(lm: LoadedModel, prefix_cache: bool = True, batch_size: int = 8):
    """(rank results, greedy generations, greedy generations with stop strings) on the test_engine items."""
    rank_items = make_items(choices=RANK_CHOICES)
    engine = Engine(lm, batch_size=batch_size, prefix_cache=prefix_cache)
    ranks = engine.rank(rank_items)
    free = [o[0] for o in engine.generate(make_items(), GenerationSettings(max_new_tokens=16))]
    stopped = [o[0] for o in engine.generate(make_items(), STOP_SETTINGS)]
    return ranks, free, stopped


def logprob_gap(a, b) -> float:
    """The largest absolute difference of option log-likelihoods between two rank result lists."""
    return max(abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra.logprobs, rb.logprobs, strict=True))


def check_engine_against_cpu(model: str, device: str) -> None:
    """The engine on `device` against the CPU on the same items (fp32, TF32 off): log-likelihoods within
    DEVICE_LOGPROB_ABS + DEVICE_FP32_FACTOR x the CPU's fp32 error against float64, the same argmax, identical greedy outputs; prefix cache on and off the same; batched
    generation with stop strings equal to one item at a time, and cut at the stop strings."""
    cpu, dev = lively_pair(model, device, scale=4.0 if model == "tiny-llama" else 3.0)
    exact = LoadedModel(model=copy.deepcopy(cpu.model).double(), tokenizer=cpu.tokenizer, kind=cpu.kind,
                        name=f"{model} (float64)", untrained=True)
    with no_tf32():
        ref_rank, ref_free, ref_stop = engine_outputs(cpu)
        fp32_error = logprob_gap(ref_rank, Engine(exact, batch_size=8).rank(make_items(choices=RANK_CHOICES)))
        rank, free, stop = engine_outputs(dev)
        rank_plain, free_plain, stop_plain = engine_outputs(dev, prefix_cache=False)
        stop_single = engine_outputs(dev, batch_size=1)[2]
    gap = logprob_gap(rank, ref_rank)
    tolerance = DEVICE_LOGPROB_ABS + DEVICE_FP32_FACTOR * fp32_error
    print(f"{model} on {device} vs cpu: largest log-likelihood gap {gap:.2e} (tolerance {tolerance:.2e}: "
          f"{DEVICE_LOGPROB_ABS} + {DEVICE_FP32_FACTOR} x the CPU's fp32 error {fp32_error:.2e}); "
          f"prefix cache on vs off {logprob_gap(rank, rank_plain):.2e}")
    assert gap <= tolerance
    assert [r.best for r in rank] == [r.best for r in ref_rank]
    assert free == ref_free and stop == ref_stop
    assert logprob_gap(rank, rank_plain) <= 1e-4 and free_plain == free and stop_plain == stop
    assert stop_single == stop
    assert not any(s in out for out in stop for s in STOP_SETTINGS.stop)
    assert len(set(free)) > 1, "the generations should differ between items (lively weights)"


# ----------------------------------------------------------------------------------------------------------
# the CPU half: the harness proven here


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-t5"])
def test_cpu_bf16_autocast_close_to_fp32(tmp_path, model):
    check_bf16_close_to_fp32(tmp_path, model, "cpu")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("model", ["tiny-llama", "tiny-t5"])
def test_cpu_packed_equals_unpacked(model, precision):
    check_packed_equals_unpacked(model, "cpu", precision)


def test_cpu_engine_harness():
    """The CPU against a copy of itself: the comparison harness finds no gap and every check holds."""
    check_engine_against_cpu("tiny-llama", "cpu")


def test_cpu_fsdp2_torchrun_one_process(tmp_path):
    """The torchrun launch of the FSDP2 check, on one CPU process (gloo; flanlab shards the model itself)."""
    check_fsdp2_torchrun_matches_single(tmp_path, "cpu", 1)


def test_cpu_exact_resume(tmp_path):
    """The exact-resume harness (deterministic training processes, SIGKILL while saving) on the CPU."""
    check_exact_resume(tmp_path, "cpu")


def test_cpu_fsdp2_torchrun_resume(tmp_path):
    """The FSDP2 resume harness under torchrun, one CPU process (gloo; flanlab shards the model itself)."""
    check_fsdp2_torchrun_resume(tmp_path, "cpu", 1)


def test_precision_setting_is_checked(tmp_path):
    with pytest.raises(Exception, match="precision"):
        load_train_config(None, None, model="tiny-llama", data=str(tmp_path), output_dir=str(tmp_path / "r"),
                          precision="fp16")


def test_summary_of_a_check_run(tmp_path):
    """bench/cuda_summary.py turns the JUnit XML of the pytest run and the script's step records into the
    summary block, with a failing exit status when any check failed."""
    import cuda_summary

    junit = tmp_path / "cuda.xml"
    junit.write_text("""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.test_cuda" name="test_cuda_training_bf16_close_to_fp32[tiny-llama]" time="3.2"/>
<testcase classname="tests.test_cuda" name="test_cuda_exact_resume" time="20.1">
  <failure message="AssertionError: lm_head.weight differs after resume">trace</failure></testcase>
<testcase classname="tests.test_cuda" name="test_cuda_fsdp2_torchrun_matches_single[2]" time="0.0">
  <skipped type="pytest.skip" message="needs 2 GPUs, this machine has 1">skip</skipped></testcase>
</testsuite></testsuites>""")
    steps = tmp_path / "steps.tsv"
    steps.write_text("install\tPASS\t13 wheels; torch 2.13.0+cu128 unchanged\n"
                     "demo\tPASS\treport at /tmp/x/report/index.html\n"
                     "speed train\tINFO\ttiny-llama bf16: 12345 tokens/s\n")
    lines, failed = cuda_summary.summarize(junit, steps)
    text = "\n".join(lines)
    assert failed == 1
    assert "PASS  test_cuda_training_bf16_close_to_fp32[tiny-llama]" in text
    assert "FAIL  test_cuda_exact_resume: AssertionError: lm_head.weight differs after resume" in text
    assert "SKIP  test_cuda_fsdp2_torchrun_matches_single[2]: needs 2 GPUs, this machine has 1" in text
    assert "PASS  install: 13 wheels" in text and "INFO  speed train: tiny-llama bf16: 12345 tokens/s" in text
    assert text.splitlines()[-1] == "result: FAIL (1 failed, 3 passed, 1 skipped, 1 info)"
    # no pytest report (killed by its timeout): the tests its verbose log shows finished, and a failure
    (tmp_path / "killed.log").write_text("tests/test_cuda.py::test_cuda_engine_matches_cpu[tiny-t5] PASSED    [ 50%]\n"
                                         "tests/test_cuda.py::test_cuda_exact_resume FAILED    [ 60%]\n")
    lines, failed = cuda_summary.summarize(tmp_path / "killed.xml", steps)
    assert failed == 2 and any(line.startswith("FAIL  pytest: no report") for line in lines)
    assert "PASS  test_cuda_engine_matches_cpu[tiny-t5]: (from the log)" in lines
    lines, failed = cuda_summary.summarize(tmp_path / "absent.xml", steps)
    assert failed == 1 and any("0 tests had finished" in line for line in lines)


def test_check_script_without_cuda(tmp_path):
    """bench/cuda_check.sh on a machine without CUDA: the GPU checks are reported as skipped, exit status 0
    (its CPU half, this file's CPU tests, is left out here: CUDA_CHECK_CPU_HALF=0)."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the script runs the real checks (bench/cuda_check.sh)")
    env = subprocess_env(CUDA_CHECK_WORK=str(tmp_path / "work"), CUDA_CHECK_CPU_HALF="0", PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(REPO / "bench" / "cuda_check.sh"), "--no-install"], env=env,
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "no CUDA: skipped" in out
    assert proc.stdout.rstrip().splitlines()[-1].startswith("result: PASS"), proc.stdout[-2000:]


# ----------------------------------------------------------------------------------------------------------
# the CUDA half


@pytest.mark.cuda
@pytest.mark.parametrize("model", ["tiny-llama", "tiny-t5"])
def test_cuda_training_bf16_close_to_fp32(tmp_path, model):
    check_bf16_close_to_fp32(tmp_path, model, "cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("model", ["tiny-llama", "tiny-t5"])
def test_cuda_fp32_training_matches_cpu(tmp_path, model):
    """The same fp32 run on CUDA (TF32 off) and on the CPU: the same loss curve (1e-4 relative)."""
    with no_tf32():
        gpu = losses_of(train_run(tmp_path, "gpu", model, "cuda", precision="fp32"))
    cpu = losses_of(train_run(tmp_path, "cpu", model, "cpu", precision="fp32"))
    print(f"{model}: cuda fp32 {gpu}\n  cpu fp32 {cpu}\n  largest relative gap {curve_gap(gpu, cpu):.2e}")
    assert curve_gap(gpu, cpu) <= 1e-4


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("model", ["tiny-llama", "tiny-t5"])
def test_cuda_packed_equals_unpacked(model, precision):
    with no_tf32():
        check_packed_equals_unpacked(model, "cuda", precision)


@pytest.mark.cuda
@pytest.mark.parametrize("model", ["tiny-llama", "tiny-t5"])
def test_cuda_lora_and_adafactor(tmp_path, model):
    """bf16 autocast (the CUDA default): Adafactor full fine-tuning and LoRA train with finite, falling losses; the
    merged LoRA model exports and scores on CUDA."""
    adafactor = losses_of(train_run(tmp_path, "adafactor", model, "cuda", optimizer="adafactor"))
    lora_run = train_run(tmp_path, "lora", model, "cuda", lr=5e-2, **{"lora": {"enabled": True, "r": 4, "alpha": 8}})
    lora = losses_of(lora_run)
    print(f"{model}: adafactor {adafactor}\n  lora {lora}")
    for curve in (adafactor, lora):
        assert len(curve) == FIELDS["steps"] and all(math.isfinite(x) for x in curve)
        assert curve[-1] < curve[0]
    assert (lora_run / "adapter").is_dir()
    merged = load(str(lora_run / "model"), device="cuda")
    ranks = Engine(merged).rank(make_items())
    assert all(math.isfinite(lp) for r in ranks for lp in r.logprobs)


@pytest.mark.cuda
@pytest.mark.parametrize("nproc", [1, 2])
def test_cuda_fsdp2_torchrun_matches_single(tmp_path, nproc):
    if torch.cuda.device_count() < nproc:
        pytest.skip(f"needs {nproc} GPUs, this machine has {torch.cuda.device_count()}")
    with no_tf32():
        check_fsdp2_torchrun_matches_single(tmp_path, "cuda", nproc)


@pytest.mark.cuda
def test_cuda_exact_resume(tmp_path):
    check_exact_resume(tmp_path, "cuda")


@pytest.mark.cuda
def test_cuda_fsdp2_torchrun_resume(tmp_path):
    check_fsdp2_torchrun_resume(tmp_path, "cuda", 1)


@pytest.mark.cuda
@pytest.mark.parametrize("model", ["tiny-llama", "tiny-t5"])
def test_cuda_engine_matches_cpu(model):
    check_engine_against_cpu(model, "cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("model", ["tiny-llama", "tiny-t5"])
def test_cuda_engine_bf16_weights(model):
    """The default on CUDA: bf16 weights (flanlab.models.default_dtype). Finite log-likelihoods and generations;
    the gap to fp32 and the argmax agreement are printed for the record."""
    cpu, dev = lively_pair(model, "cuda", scale=1.0, dtype=torch.bfloat16)
    ref_rank = engine_outputs(cpu)[0]
    rank, free, stop = engine_outputs(dev)
    agree = sum(a.best == b.best for a, b in zip(rank, ref_rank))
    print(f"{model} bf16 on cuda vs fp32 cpu: largest log-likelihood gap {logprob_gap(rank, ref_rank):.3f}, "
          f"argmax agreement {agree}/{len(rank)}")
    assert all(math.isfinite(lp) for r in rank for lp in r.logprobs)
    assert len(free) == len(stop) == len(make_items())


@pytest.mark.cuda
def test_cuda_smollm2(tmp_path):
    """The real SmolLM2-135M-Instruct, where its package (the GGUF) is on the machine: bf16 autocast training gives
    finite, falling losses; the engine in fp32 on CUDA matches the CPU within DEVICE_LOGPROB_ABS, and in bf16 (the
    CUDA default) gives finite log-likelihoods (its gap and argmax agreement printed)."""
    from flanlab.models import PRESETS, preset_available

    ok, why = preset_available(PRESETS["smollm2-135m-instruct"])
    if not ok:
        pytest.skip(f"the SmolLM2 preset is not on this machine: {why}")
    name = "smollm2-135m-instruct"
    losses = losses_of(train_run(tmp_path, "smollm2", name, "cuda", steps=4, lr=1e-4, max_input_len=192,
                                 max_target_len=64, pack_len=256))
    print(f"{name} bf16 autocast on cuda: {losses}")
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    items = make_items(choices=(" A", " B", " a longer option"))
    reference = Engine(load(name, device="cpu", dtype=torch.float32, verbose=False)).rank(items)
    with no_tf32():
        fp32 = Engine(load(name, device="cuda", dtype=torch.float32, verbose=False)).rank(items)
    bf16 = Engine(load(name, device="cuda", verbose=False)).rank(items)
    agree = sum(a.best == b.best for a, b in zip(bf16, reference))
    print(f"{name}: cuda fp32 vs cpu largest log-likelihood gap {logprob_gap(fp32, reference):.2e}; cuda bf16 "
          f"{logprob_gap(bf16, reference):.3f}, argmax agreement {agree}/{len(items)}")
    assert logprob_gap(fp32, reference) <= DEVICE_LOGPROB_ABS
    assert [r.best for r in fp32] == [r.best for r in reference]
    assert all(math.isfinite(lp) for r in bf16 for lp in r.logprobs)


def test_generation_speed_counts_the_tokens_the_model_produced():
    """bench/cuda_speed.py's generation rate counts the engine's generated tokens: re-tokenizing the output text
    counted none for tiny-t5 (its untrained tokens decode to ""), and the first H100 run printed 0 tokens/s for it."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import cuda_speed
    finally:
        sys.path.remove(str(REPO / "bench"))
    line = cuda_speed.generation_speed("tiny-t5", "cpu")
    assert "(2048 tokens in " in line, line  # 32 prompts x 64 new tokens, no stop strings, no EOS from these weights
