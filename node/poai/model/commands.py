"""CLI commands of the model package: ``dataset build`` and ``model build-genesis``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (the node's CLI calls :func:`add_commands` instead)."""
    parser = argparse.ArgumentParser(prog="poai")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
