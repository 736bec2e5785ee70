"""CLI commands of the model package: ``dataset build`` and ``model build-genesis``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from poai.model.dataset import KEY_LEN, DatasetError, build_dataset


def _read_key(args: argparse.Namespace) -> bytes:
    if args.key and args.key_file:
        raise DatasetError("give --key or --key-file, not both")
    if args.key_file:
        text = Path(args.key_file).read_text().strip()
    elif args.key:
        text = args.key
    else:
        raise DatasetError("a dataset key is required: --key HEX or --key-file FILE")
    text = text.removeprefix("0x")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise DatasetError("dataset key is not hex") from None
    if len(key) != KEY_LEN:
        raise DatasetError(f"dataset key must be {KEY_LEN} bytes ({2 * KEY_LEN} hex digits)")
    return key


def cmd_dataset_build(args: argparse.Namespace) -> int:
    try:
        key = _read_key(args)
        digest = build_dataset(args.input, args.out, key, args.sample_len)
    except (DatasetError, OSError) as e:
        # a clean message, not a traceback, whichever CLI front end called us
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = Path(args.out).stat().st_size
    print(json.dumps({"out": str(args.out), "sha256": digest, "bytes": size,
                      "sample_len": args.sample_len}))
    return 0


def cmd_model_build_genesis(args: argparse.Namespace) -> int:
    # deferred: training code and transformers load only for this command
    from poai.model.genesis import ASSETS_DIR, GENESIS_TRAIN, build_genesis

    settings = GENESIS_TRAIN
    if args.steps is not None:
        from dataclasses import replace

        settings = replace(settings, steps=args.steps)
    out = build_genesis(Path(args.assets_dir) if args.assets_dir else ASSETS_DIR, settings)
    print(json.dumps(out, sort_keys=True))
    return 0


def cmd_model_import(args: argparse.Namespace) -> int:
    # deferred: torch and transformers load only for this command
    from poai.model.hf import CheckpointError, import_checkpoint
    from poai.model.store import BlobError, BlobStore

    try:
        out = import_checkpoint(args.dir, BlobStore(args.store))
    except (CheckpointError, BlobError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, sort_keys=True))
    return 0


def cmd_model_export(args: argparse.Namespace) -> int:
    # deferred: torch and transformers load only for this command
    from poai.model.hf import CheckpointError, export_checkpoint
    from poai.model.snapshot import ManifestError
    from poai.model.store import BlobError, BlobStore

    try:
        out = export_checkpoint(BlobStore(args.store), args.manifest, args.dir)
    except (CheckpointError, BlobError, ManifestError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"dir": str(out), "manifest": args.manifest}))
    return 0

def _bounded(kind: type[int] | type[float], low: float, *, strict: bool = False
             ) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` at least ``low`` (above it if ``strict``)."""
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if v < low or (strict and v == low):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if strict else '>='} {low}")
        return v

    return parse


_nonneg_int = _bounded(int, 0)
_pos_int = _bounded(int, 1)
_pos_float = _bounded(float, 0.0, strict=True)


def cmd_expert_train(args: argparse.Namespace) -> int:
    from poai.model.store import BlobError

    try:
        return _expert_train(args)
    except (ValueError, BlobError, OSError) as e:  # ExpertTrainError, ManifestError, IO
        print(f"error: {e}", file=sys.stderr)
        return 2


def _expert_train(args: argparse.Namespace) -> int:
    import time

    from poai.model.blobs import expert_blob
    from poai.model.config import set_consensus_threads
    from poai.model.expert_train import (
        ExpertTrainError,
        check_slot,
        eta_seconds,
        routed_loss,
        settings_for,
        train_expert,
    )
    from poai.model.genesis import (
        EVAL_WINDOWS,
        VALIDATION_TEXT,
        genesis_manifest_hash,
        genesis_store,
    )
    from poai.model.snapshot import Manifest, assemble_model, read_manifest
    from poai.model.store import BlobStore
    from poai.model.train import byte_tensor, eval_windows

    store = BlobStore(Path(args.datadir) / "blobs")
    genesis = genesis_store()
    base_hash = args.snapshot or genesis_manifest_hash()
    base_store = genesis if genesis.has(base_hash) else store
    manifest = read_manifest(base_store, base_hash)
    check_slot(manifest.spec, args.layer, args.expert)
    if args.data:
        text = Path(args.data).read_bytes()
        if not text.strip():
            raise ExpertTrainError(f"training data file {args.data} is empty")
        source = args.data
    else:
        from poai.model.corpus import build_splits

        text = build_splits().train.encode("utf-8")
        source = "the genesis corpus' train split"
    settings = settings_for(args.steps, args.lr, args.batch_size, args.seed)
    data = byte_tensor(text)
    if data.numel() <= settings.seq_len + 1:
        raise ExpertTrainError(f"training data ({data.numel()} bytes) is shorter than one "
                               f"window of {settings.seq_len + 2} bytes")

    set_consensus_threads()
    model = assemble_model(base_store, base_hash)
    windows = eval_windows(byte_tensor(VALIDATION_TEXT.read_bytes()), settings.seq_len,
                           args.eval_windows or EVAL_WINDOWS)
    log = sys.stderr
    print(f"training layer {args.layer} expert {args.expert} of snapshot {base_hash} on "
          f"{source} ({data.numel()} bytes), {settings.steps} steps", file=log, flush=True)
    before = routed_loss(model, windows, args.layer, args.expert)
    t0 = time.perf_counter()

    def progress(step: int, loss: float, secs: float) -> None:
        left = eta_seconds(step, settings.steps, secs)
        print(f"step {step + 1:5d}/{settings.steps}  loss {loss:.4f}  {secs:6.1f}s elapsed  "
              f"~{left:.0f}s left", file=log, flush=True)

    losses = train_expert(model, data, args.layer, args.expert, settings, progress=progress)
    seconds = time.perf_counter() - t0
    after = routed_loss(model, windows, args.layer, args.expert)

    blob = expert_blob(model, args.layer, args.expert)
    digest = store.put(blob)
    rows = [list(r) for r in manifest.experts]
    rows[args.layer][args.expert] = digest
    candidate = Manifest(manifest.spec, manifest.trunk, tuple(tuple(r) for r in rows))
    for h in dict.fromkeys(candidate.blob_hashes()):
        if not store.has(h):
            store.put(base_store.get(h))  # get() re-verifies the hash
    candidate_hash = store.put(candidate.to_bytes())
    if args.out:
        Path(args.out).write_bytes(blob)
    result = {
        "layer": args.layer, "expert": args.expert, "base_snapshot": base_hash,
        "blob": digest, "blob_path": str(store.path(digest)), "blob_bytes": len(blob),
        "out": args.out, "snapshot": candidate_hash, "steps": settings.steps,
        "lr": settings.lr, "train_seconds": round(seconds, 1),
        "final_train_loss": round(sum(losses[-10:]) / min(10, len(losses)), 4),
        "validation": {
            "windows": int(windows.shape[0]), "tokens": before.tokens,
            "routed_tokens": before.routed_tokens,
            "overall_before": round(before.overall, 4), "overall_after": round(after.overall, 4),
            "routed_before": round(before.routed, 4), "routed_after": round(after.routed, 4),
        },
    }
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    v = result["validation"]
    print(f"validation loss (nats/byte), {v['windows']} windows:\n"
          f"  all tokens            {v['overall_before']:.4f} -> {v['overall_after']:.4f}\n"
          f"  routed to the expert  {v['routed_before']:.4f} -> {v['routed_after']:.4f} "
          f"({v['routed_tokens']} of {v['tokens']} tokens)\n"
          f"expert blob   {digest} ({len(blob)} bytes)\n"
          f"  written to  {result['blob_path']}" + (f" and {args.out}" if args.out else "") +
          f"\ncandidate snapshot manifest {candidate_hash} (same store)")
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``dataset`` and ``model`` command groups; each leaf sets ``func(args) -> int``."""
    ds = subparsers.add_parser("dataset", help="encrypted quiz datasets")
    ds_sub = ds.add_subparsers(dest="dataset_command", required=True)
    b = ds_sub.add_parser("build", help="encrypt a text file into a quiz dataset")
    b.add_argument("--input", required=True, help="text file; cut into sample-len byte records")
    b.add_argument("--out", required=True, help="output .poaids file")
    b.add_argument("--key", help="32-byte dataset key, hex")
    b.add_argument("--key-file", help="file holding the hex key")
    b.add_argument("--sample-len", type=int, default=64)
    b.set_defaults(func=cmd_dataset_build)

    m = subparsers.add_parser("model", help="the MoE model")
    m_sub = m.add_subparsers(dest="model_command", required=True)
    g = m_sub.add_parser("build-genesis", help="build corpus, train, write genesis assets")
    g.add_argument("--assets-dir", help="default: the package's assets directory")
    g.add_argument("--steps", type=int, help="training steps (default: the genesis setting)")
    g.set_defaults(func=cmd_model_build_genesis)
    i = m_sub.add_parser("import", help="a local HuggingFace Mixtral checkpoint -> blobs + "
                         "manifest")
    i.add_argument("dir", help="checkpoint directory (config.json + *.safetensors)")
    i.add_argument("--store", required=True, help="blob store directory to write into (e.g. "
                   "a genesis config's modelDir, or <datadir>/blobs)")
    i.set_defaults(func=cmd_model_import)
    x = m_sub.add_parser("export", help="a snapshot -> a HuggingFace Mixtral directory")
    x.add_argument("dir", help="output directory (new or empty)")
    x.add_argument("--store", required=True, help="blob store holding the snapshot")
    x.add_argument("--manifest", required=True, help="manifest hash (hex sha256)")
    x.set_defaults(func=cmd_model_export)

    ex = subparsers.add_parser("expert", help="train one expert of the model")
    ex_sub = ex.add_subparsers(dest="expert_command", required=True)
    t = ex_sub.add_parser(
        "train", help="fine-tune one expert; every other weight stays bit-identical",
        description="Fine-tune expert E of layer L of a snapshot (default: genesis) and write "
        "the new expert blob, and a candidate snapshot manifest naming it, into the data "
        "dir's blob store.")
    t.add_argument("--layer", type=_nonneg_int, required=True, help="layer index")
    t.add_argument("--expert", type=_nonneg_int, required=True, help="expert index in the layer")
    t.add_argument("--data", help="training text file (default: the genesis train split)")
    t.add_argument("--steps", type=_pos_int, default=200, help="optimizer steps (default 200)")
    t.add_argument("--lr", type=_pos_float, default=1e-3, help="peak learning rate (1e-3)")
    t.add_argument("--batch-size", type=_pos_int, default=16, help="windows per step (16)")
    t.add_argument("--seed", type=_nonneg_int, default=0, help="sampling seed (0)")
    t.add_argument("--eval-windows", type=_pos_int, default=None,
                   help="validation windows (default: all, up to 1024)")
    t.add_argument("--snapshot", help="base snapshot manifest hash (default: genesis)")
    t.add_argument("--datadir", default=str(Path.home() / ".poai" / "devnet"),
                   help="data dir whose blobs/ store receives the result (default ~/.poai/devnet)")
    t.add_argument("--out", help="also write the expert blob to this file")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(func=cmd_expert_train)
    from poai.governance.commands import add_expert_propose

    add_expert_propose(ex_sub)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (the node's CLI calls :func:`add_commands` instead)."""
    parser = argparse.ArgumentParser(prog="poai")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
