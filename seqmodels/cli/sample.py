"""Generate from a checkpoint: ``seqmodels-sample ckpt_path=RUN_DIR_OR_CKPT prompts='["def "]'``.

A language model continues each prompt (``strategy``, ``temperature``, ``top_k``, ``seed``,
``max_new_tokens``); an encoder-decoder decodes each prompt as a source sequence (greedy or
``beam_width``). :func:`sample` returns the samples; the command prints them and writes
``samples.json`` in its own run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from seqmodels.experiment.entry import CONFIG_PATH, run_main
from seqmodels.experiment.runs import load_run, require_ckpt_path, to_device
from seqmodels.experiment.summary import lm_samples, write_json


@torch.no_grad()
def _seq2seq_samples(model: Any, datamodule: Any, cfg: DictConfig) -> list[dict[str, Any]]:
    vocab, target_vocab = datamodule.vocab, datamodule.target_vocab
    if vocab is None or target_vocab is None:
        raise ValueError("the run's DataModule has no source/target vocabulary to decode with")
    samples = []
    for prompt in cfg.prompts:
        ids = vocab.encode(prompt)
        if not ids:
            raise ValueError(f"prompt {prompt!r} encodes to no tokens")
        source = torch.tensor([ids], device=model.device)
        out = model.decode(source, torch.tensor([len(ids)]), beam_width=cfg.beam_width)
        samples.append({"source": prompt, "prediction": target_vocab.decode_text(out[0].tolist())})
    return samples


def sample(cfg: DictConfig) -> list[dict[str, Any]]:
    """Samples from ``cfg.ckpt_path``: language models generate, encoder-decoders decode."""
    ckpt_path = require_ckpt_path(cfg, "seqmodels-sample")
    run = load_run(ckpt_path, cfg.paths.get("runs_dir"), cfg.get("name"))
    model = to_device(run.load_model()).eval()
    if hasattr(model, "generate"):
        if getattr(model, "vocab", None) is None:
            raise ValueError("the checkpoint's model stores no vocabulary to read prompts with")
        samples = lm_samples(model, cfg)
    elif hasattr(model, "decode"):
        datamodule = run.datamodule()
        datamodule.setup("fit")
        samples = _seq2seq_samples(model, datamodule, cfg)
    else:
        raise ValueError(
            f"{type(model).__name__} does not generate: seqmodels-sample needs a LanguageModel "
            "or Seq2Seq checkpoint"
        )
    out = Path(cfg.paths.output_dir)
    write_json(out / "samples.json", {"checkpoint": str(run.ckpt_path), "samples": samples})
    for s in samples:
        if "generated" in s:
            print(f"--- prompt {s['prompt']!r} ---\n{s['prompt']}{s['generated']}")
        else:
            print(f"{s['source']!r} -> {s['prediction']!r}")
    return samples


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="sample")
def _hydra_main(cfg: DictConfig) -> None:
    sample(cfg)


def main() -> None:
    """Console entry point ``seqmodels-sample``."""
    run_main(_hydra_main)


if __name__ == "__main__":
    main()
