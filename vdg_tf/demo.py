"""`vdg demo`: the whole product on the embedded sample data, in one command.

sample mp4s -> tf.data -> three-modality classifier -> train -> prune 50% -> PQAT
-> int8 TFLite -> run in LiteRT on the evaluation split -> report.json.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vdg_tf.compression import PruneConfig, QATConfig, overall_sparsity, prune, qat, sparsity_table
from vdg_tf.config import Config
from vdg_tf.data.manifest import read_manifest
from vdg_tf.data.pipeline import make_dataset
from vdg_tf.data.sample import make_sample_data
from vdg_tf.export.tflite import ExportConfig, convert
from vdg_tf.export.verify import agreement, predict_tflite, representative_inputs
from vdg_tf.files import atomic_write_bytes, write_json
from vdg_tf.models.builder import inference_model
from vdg_tf.training.artifacts import save_model_atomic, save_run_metadata
from vdg_tf.training.evaluate import predict_dataset
from vdg_tf.training.metrics import classification_report
from vdg_tf.training.train import compile_classifier, fit_verbosity, train, with_head_targets


@dataclass
class DemoConfig:
    """The demo's sizes: enough clips to learn the fused task, small enough for 2 CPU cores."""

    clips: int = 320
    seed: int = 0
    sparsity: float = 0.5
    prune_epochs: int = 6
    qat_epochs: int = 4
    # fine-tuning at 1/20 of the training rate: at 1/3, pruning and QAT cost the
    # sample model 10-50 points of accuracy; at 1/10 to 1/30, under 2
    finetune_lr_scale: float = 0.05


def _log(msg: str) -> None:
    print(f"[vdg demo] {msg}", file=sys.stderr, flush=True)


def _sizes(path: Path) -> dict:
    data = path.read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9))}


def run_demo(
    out_dir: str | Path = "saved_models/demo", demo: DemoConfig | None = None, progress: bool = True
) -> dict:
    """Run every stage and return the report (also written to `out_dir/report.json`)."""
    demo = demo or DemoConfig()
    out = Path(out_dir)
    t0 = time.time()
    data_dir = out / "data"
    info = data_dir / "info.json"
    if info.is_file() and json.loads(info.read_text()) | {"labels": None} == {
        "clips": demo.clips,
        "seed": demo.seed,
        "labels": None,
    }:
        _log(f"sample data already in {data_dir}")
        manifests = {k: str(data_dir / f"{k}.jsonl") for k in ("manifest_train", "manifest_eval")}
    else:
        _log(f"writing {demo.clips} sample clips (mp4: H.264 + AAC) to {data_dir}")
        manifests = make_sample_data(data_dir, demo.clips, demo.seed, progress=progress)

    cfg = Config()
    _log("training the three-modality classifier (video + audio + text, serial fusion)")
    result = train(
        cfg, manifests["manifest_train"], out / "run", manifests["manifest_eval"], progress
    )
    labels, tok = result.labels, result.tokenizer
    train_rows, _ = read_manifest(manifests["manifest_train"])
    eval_rows, _ = read_manifest(manifests["manifest_eval"])
    train_ds = make_dataset(train_rows, cfg.data, labels, tok, training=True)
    eval_ds = make_dataset(eval_rows, cfg.data, labels, tok)
    names = result.model.output_names
    fit_ds = with_head_targets(train_ds, names)
    verbose = fit_verbosity(progress)

    def compile_fn(model, steps):
        compile_classifier(model, _scaled(cfg, demo.finetune_lr_scale), steps)

    _log(f"pruning to {demo.sparsity:.0%} sparsity ({demo.prune_epochs} epochs)")
    prune_cfg = PruneConfig(demo.sparsity, epochs=demo.prune_epochs)
    pruned = prune(
        result.model,
        fit_ds,
        prune_cfg,
        compile_fn,
        verbose=verbose,
    )
    _log(f"pruning-preserving quantization-aware training ({demo.qat_epochs} epochs)")
    qres = qat(
        pruned,
        fit_ds,
        QATConfig(demo.qat_epochs, preserve_sparsity=True),
        compile_fn,
        verbose=verbose,
    )

    _log("exporting TFLite (float32 reference and int8) and running them in LiteRT")
    exports = out / "export"
    float_model = inference_model(result.model)
    float_path = atomic_write_bytes(
        exports / "model_float32.tflite", convert(float_model, ExportConfig("float32"))
    )
    rep = lambda: representative_inputs(train_ds, 64)  # noqa: E731
    int8_path = atomic_write_bytes(
        exports / "model_int8.tflite",
        convert(inference_model(qres.model), ExportConfig.edge_int8(rep)),
    )
    save_run_metadata(exports, cfg, labels, tok)  # labels, vocab, config beside the .tflite
    save_model_atomic(pruned, out / "pruned.keras")

    y, p_float = predict_dataset(float_model, eval_ds)
    _, p_pruned = predict_dataset(pruned, eval_ds)
    _, p_qat = predict_dataset(qres.model, eval_ds)
    _, p_int8 = predict_tflite(int8_path, eval_ds)
    _, p_tfl32 = predict_tflite(float_path, eval_ds)
    float_report = classification_report(y, p_float, labels)
    int8_report = classification_report(y, p_int8, labels)
    f32_size, i8_size = _sizes(float_path), _sizes(int8_path)
    tfl32_acc = classification_report(y, p_tfl32, labels)["accuracy"]
    stages = {
        "keras_float": {
            "accuracy": float_report["accuracy"],
            "path": str(out / "run" / "model.keras"),
        },
        "pruned": {
            "accuracy": classification_report(y, p_pruned, labels)["accuracy"],
            "path": str(out / "pruned.keras"),
        },
        "qat": {"accuracy": classification_report(y, p_qat, labels)["accuracy"]},
        "tflite_float32": {"accuracy": tfl32_acc, "path": str(float_path), **f32_size},
        "tflite_int8": {"accuracy": int8_report["accuracy"], "path": str(int8_path), **i8_size},
    }
    report = {
        "eval_clips": int(len(y)),
        "labels": labels,
        "float_accuracy": float_report["accuracy"],
        "float_macro_f1": float_report["macro_f1"],
        "tflite_float32_accuracy": tfl32_acc,
        "int8_tflite_accuracy": int8_report["accuracy"],
        "int8_macro_f1": int8_report["macro_f1"],
        "int8_vs_float": agreement(p_float, p_int8),
        "sparsity": overall_sparsity(pruned, prune_cfg),
        "sparsity_by_layer": sparsity_table(pruned),
        "float32_tflite": {"path": str(float_path), **f32_size},
        "int8_tflite": {"path": str(int8_path), **i8_size},
        "int8_size_ratio": i8_size["bytes"] / f32_size["bytes"],
        "int8_gzip_ratio": i8_size["gzip_bytes"] / f32_size["gzip_bytes"],
        "layers_left_float_in_qat": qres.float_layers,
        "skipped": result.metrics.get("skipped", 0),
        "stages": stages,
        "seconds": round(time.time() - t0, 1),
    }
    write_json(out / "report.json", report)
    report["report"] = str(out / "report.json")
    return report


def _scaled(cfg: Config, lr_scale: float) -> Config:
    """Fine-tuning (prune, QAT) uses a smaller constant learning rate than training."""
    from dataclasses import replace

    return replace(
        cfg,
        train=replace(
            cfg.train, learning_rate=cfg.train.learning_rate * lr_scale, schedule="constant"
        ),
    )


def format_report(report: dict) -> str:
    """The short human-readable summary printed at the end of the demo."""
    a = report["int8_vs_float"]
    return "\n".join(
        [
            "vdg demo report",
            f"  eval clips               {report['eval_clips']}",
            f"  float Keras accuracy     {report['float_accuracy']:.3f}",
            f"  float32 TFLite accuracy  {report['tflite_float32_accuracy']:.3f}",
            f"  pruned / QAT (Keras)     {report['stages']['pruned']['accuracy']:.3f} / {report['stages']['qat']['accuracy']:.3f}",
            f"  int8 TFLite accuracy     {report['int8_tflite_accuracy']:.3f}  (LiteRT; top-1 agreement {a['top1_agreement']:.3f})",
            f"  weight sparsity          {report['sparsity']:.2f}",
            f"  float32 .tflite          {report['float32_tflite']['bytes']:,} B ({report['float32_tflite']['gzip_bytes']:,} gzip)",
            f"  int8 .tflite             {report['int8_tflite']['bytes']:,} B ({report['int8_tflite']['gzip_bytes']:,} gzip)"
            f"  = {report['int8_size_ratio']:.2f}x bytes, {report['int8_gzip_ratio']:.2f}x gzip",
            f"  report                   {report['report']}",
        ]
    )
