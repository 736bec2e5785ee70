"""`poai expert propose` and `poai gov ...`: model governance from the command line.

Everything goes through a node's JSON-RPC (web3) with the ABIs and addresses of the genesis
contracts asset shipped in the package; custom errors and revert reasons come back in words.
Keys: ``--key HEX``, ``--key-file FILE`` (a hex key), ``--keystore FILE`` (+ ``--password-file``)
or ``--dev-account N`` (the public dev mnemonic's accounts, for --dev chains).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception
from web3.types import RPCEndpoint

from poai.bindings import decode_revert as _decode_revert
from poai.bindings import deployed, revert_of_transaction
from poai.governance.contracts import load_genesis_contracts
from poai.governance.payloads import chunk_hashes, split_chunks
from poai.model.store import BlobError

RECEIPT_TIMEOUT_S = 120.0
SUPPORT = {"against": 0, "for": 1, "abstain": 2}
STATES = ("Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired",
          "Executed")


class GovError(Exception):
    """A failed command, in words (one line)."""


def decode_revert(data: bytes) -> str:
    """A revert's return data in words (the shared decoder of poai.bindings, which knows every
    PoAI contract's custom errors): ``ChunkOutOfOrder(expertId=5, expected=0, got=1)``."""
    return str(_decode_revert(data))


class Gov:
    """The governance contracts on one node, and the account sending transactions."""

    def __init__(self, rpc: str, key: bytes | None) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 60}))
        gc = load_genesis_contracts()
        self.c = {name: self.w3.eth.contract(address=Web3.to_checksum_address(addr),
                                             abi=gc.abis[name])
                  for name, addr in gc.addresses.items() if name in gc.abis}
        # The same contracts through poai.bindings: named results, reverts in words.
        self.b = deployed(self.w3, gc.addresses)
        self.account = Account.from_key(key) if key is not None else None
        try:
            self.chain_id = self.w3.eth.chain_id
        except (OSError, Web3Exception) as exc:
            raise GovError(f"no node at {rpc}: {exc}") from None

    def call(self, contract: str, fn: str, *args: Any) -> Any:
        """A view's result, named (structs as NamedTuples)."""
        try:
            return getattr(self.b, contract).call(fn, *args)
        except ContractLogicError as exc:  # poai.bindings' ContractRevert, in words
            raise GovError(str(exc)) from None

    def send(self, contract: str, fn: str, *args: Any, value: int = 0) -> Any:
        if self.account is None:
            raise GovError("this command sends a transaction: give --key, --key-file, "
                           "--keystore or --dev-account")
        call = getattr(self.b, contract).fn(fn, *args)
        try:
            tx = call.build_transaction({
                "from": self.account.address, "value": value, "chainId": self.chain_id,
                "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending")})
        except ContractLogicError as exc:  # poai.bindings' ContractRevert, in words
            raise GovError(str(exc)) from None
        signed = self.account.sign_transaction(tx)
        h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=RECEIPT_TIMEOUT_S,
                                                           poll_latency=0.3)
        if receipt["status"] != 1:
            why = str(revert_of_transaction(self.w3, h) or "reverted")
            if not why.startswith(("reverted", "panic")):
                why = f"reverted: {why}"
            raise GovError(f"{contract}.{fn}: transaction 0x{bytes(h).hex()} {why}")
        return receipt

    def proposal(self, pid: int) -> dict[str, Any]:
        """The ProposalCreated event of ``pid`` (targets, calldatas, description)."""
        gov = self.c["PoAIGovernor"]
        for ev in gov.events.ProposalCreated().get_logs(from_block=0):
            if int(ev["args"]["proposalId"]) == pid:
                return dict(ev["args"])
        raise GovError(f"no proposal {pid} on this chain (see `poai gov proposals`)")


def _key(args: argparse.Namespace) -> bytes | None:
    if args.key_file:
        text = Path(args.key_file).read_text().strip()
    elif args.key:
        text = args.key
    elif args.keystore:
        return _keystore_key(Path(args.keystore), args.password_file)
    elif args.dev_account is not None:
        from poai.chain.devaccounts import DEV_MNEMONIC, dev_accounts

        accounts = dev_accounts(DEV_MNEMONIC, 10)
        if not 0 <= args.dev_account < len(accounts):
            raise GovError("--dev-account must be 0..9")
        return bytes(accounts[args.dev_account].private_key)
    else:
        return None
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise GovError("the key is not hex") from None
    if len(key) != 32:
        raise GovError("the key must be 32 bytes (64 hex digits)")
    return key


def _keystore_key(path: Path, password_file: str | None) -> bytes:
    import getpass

    password = (Path(password_file).read_text().rstrip("\n") if password_file
                else getpass.getpass(f"password for {path.name}: "))
    try:
        return bytes(Account.decrypt(json.loads(path.read_text()), password))
    except (ValueError, KeyError, TypeError) as exc:  # bad JSON, wrong password (MAC mismatch)
        raise GovError(f"keystore {path}: {exc}") from None


def _gov(args: argparse.Namespace) -> Gov:
    return Gov(args.rpc, _key(args))


def _run(fn: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except (GovError, BlobError, OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return wrapped


def _ether(text: str) -> int:
    try:
        return Web3.to_wei(text, "ether")
    except Exception:  # noqa: BLE001 - web3 raises several types for a bad amount
        raise argparse.ArgumentTypeError(f"not an amount of POAI: {text!r}") from None


# ---- poai gov ----------------------------------------------------------------------------

def cmd_stake(args: argparse.Namespace) -> int:
    g = _gov(args)
    g.send("StakedPOAI", "deposit", value=args.amount)
    print(f"staked {Web3.from_wei(args.amount, 'ether')} POAI")
    return 0


def cmd_upload_dataset(args: argparse.Namespace) -> int:
    """Put a dataset file (e.g. from `poai dataset build`) on chain: DatasetDAO.announceFile,
    then one uploadFileChunk transaction per chunk; every node then holds it without a copy.
    Resumes an upload that stopped half way; a file already on chain is left alone."""
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GovError(f"{path}: {exc.strerror or exc}") from None
    if not data:
        raise GovError(f"{path} is empty")
    digest = hashlib.sha256(data).digest()
    chunks = split_chunks(data)
    g = _gov(args)
    complete = bool(g.call("DatasetDAO", "fileComplete", digest))
    if not complete:
        if not g.call("DatasetDAO", "fileChunkHashes", digest):
            g.send("DatasetDAO", "announceFile", digest, len(data), chunk_hashes(data))
        received = int(g.call("DatasetDAO", "fileChunksReceived", digest))
        for k in range(received, len(chunks)):
            g.send("DatasetDAO", "uploadFileChunk", digest, k, chunks[k])
            print(f"  chunk {k + 1}/{len(chunks)} on chain", file=sys.stderr)
    out = {"sha256": digest.hex(), "bytes": len(data), "chunks": len(chunks),
           "already_on_chain": complete}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"dataset file {digest.hex()} ({len(data)} bytes, {len(chunks)} chunks) "
              f"{'was already' if complete else 'is'} on chain")
    return 0


def cmd_delegate(args: argparse.Namespace) -> int:
    g = _gov(args)
    if args.to:
        to = Web3.to_checksum_address(args.to)
    elif g.account is not None:
        to = g.account.address
    else:
        raise GovError("give an address to delegate to, or a key (--key, --dev-account)")
    g.send("StakedPOAI", "delegate", to)
    print(f"delegated votes to {to}")
    return 0


def _describe(g: Gov, p: dict[str, Any]) -> dict[str, Any]:
    pid = int(p["proposalId"])
    state = STATES[g.call("PoAIGovernor", "state", pid)]
    against, for_, abstain = g.call("PoAIGovernor", "proposalVotes", pid)
    return {"id": str(pid), "state": state, "proposer": p["proposer"],
            "description": p["description"], "voteStart": int(p["voteStart"]),
            "voteEnd": int(p["voteEnd"]), "for": str(for_), "against": str(against),
            "abstain": str(abstain), "eta": int(g.call("PoAIGovernor", "proposalEta", pid))}


def cmd_proposals(args: argparse.Namespace) -> int:
    g = _gov(args)
    events = g.c["PoAIGovernor"].events.ProposalCreated().get_logs(from_block=0)
    rows = [_describe(g, dict(ev["args"])) for ev in events]
    if args.json:
        print(json.dumps(rows))
    for r in rows if not args.json else []:
        print(f"{r['id']}  {r['state']:9}  {r['description']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    g = _gov(args)
    print(json.dumps(_describe(g, g.proposal(args.id)), indent=None if args.json else 2))
    return 0


def cmd_vote(args: argparse.Namespace) -> int:
    g = _gov(args)
    support = SUPPORT[args.support]
    if args.reason:
        g.send("PoAIGovernor", "castVoteWithReason", args.id, support, args.reason)
    else:
        g.send("PoAIGovernor", "castVote", args.id, support)
    print(f"voted {args.support} on proposal {args.id}")
    return 0


def _ops(g: Gov, pid: int) -> tuple[list[str], list[int], list[bytes], bytes]:
    p = g.proposal(pid)
    desc_hash = Web3.keccak(text=p["description"])
    return list(p["targets"]), list(p["values"]), list(p["calldatas"]), desc_hash


def cmd_queue(args: argparse.Namespace) -> int:
    g = _gov(args)
    g.send("PoAIGovernor", "queue", *_ops(g, args.id))
    eta = g.call("PoAIGovernor", "proposalEta", args.id)
    print(f"queued proposal {args.id}: executable from timestamp {eta}")
    return 0


def cmd_execute(args: argparse.Namespace) -> int:
    g = _gov(args)
    g.send("PoAIGovernor", "execute", *_ops(g, args.id))
    print(f"executed proposal {args.id}")
    return 0


def _scheduled_snapshot(g: Gov, pid: int) -> tuple[int, int]:
    """(snapshot id, activation epoch) of the proposal's scheduleSnapshot call."""
    reg = g.c["ModelRegistry"]
    p = g.proposal(pid)
    for target, data in zip(p["targets"], p["calldatas"], strict=True):
        if target.lower() != reg.address.lower():
            continue
        fn, params = reg.decode_function_input(bytes(data))
        if fn.fn_name == "scheduleSnapshot":
            return int(params["snapshotId"]), int(params["activationEpoch"])
    raise GovError(f"proposal {pid} does not schedule a model snapshot")


def _gate_params(g: Gov) -> Any:
    """The chain's quality-gate parameters, from the node (poai_qualityGate)."""
    from fractions import Fraction

    from poai.quiz.gate import GateParams

    resp = g.w3.provider.make_request("poai_qualityGate", [])  # type: ignore[arg-type]
    if "result" not in resp:
        raise GovError(f"the node does not report its quality gate: {resp.get('error')}")
    r = resp["result"]
    return GateParams(windows=int(r["windows"]), grid_bits=int(r["gridBits"]),
                      min_delta=Fraction(str(r["minDelta"])))


def _in_effect(g: Gov) -> int:
    """The snapshot the node's head epoch uses (the quality gate may have kept an older one
    than the registry schedules)."""
    resp = g.w3.provider.make_request(RPCEndpoint("poai_epoch"), [])
    result = resp.get("result")
    model = result.get("model") if isinstance(result, dict) else None
    if isinstance(model, dict) and "snapshot" in model:
        return int(model["snapshot"])
    return int(g.call("ModelRegistry", "activeSnapshot", g.call("ModelRegistry", "currentEpoch")))


def _window_losses(model: Any, params: Any) -> list[float]:
    from poai.model.genesis import VALIDATION_TEXT
    from poai.quiz.gate import validation_windows, window_losses

    return window_losses(model, validation_windows(VALIDATION_TEXT.read_bytes(), params))


def _snapshot_model(g: Gov, snap: int, store: Any) -> tuple[Any, tuple[tuple[str, ...], ...]]:
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import Manifest, assemble_model, read_manifest

    genesis = genesis_store()
    spec = read_manifest(genesis, genesis_manifest_hash()).spec
    trunk, _, ids = g.call("ModelRegistry", "snapshot", snap)
    hashes = [bytes(g.call("ModelRegistry", "expert", i).payloadHash).hex() for i in ids]
    e = spec.num_local_experts
    rows = tuple(tuple(hashes[r * e:(r + 1) * e]) for r in range(spec.num_hidden_layers))
    manifest = Manifest(spec, bytes(trunk).hex(), rows)
    for h in dict.fromkeys(manifest.blob_hashes()):
        if not store.has(h):
            if not genesis.has(h):
                raise GovError(f"blob {h} of snapshot {snap} is not in {store.root}: run a node "
                               "on this data dir to import it from the chain")
            store.put(genesis.get(h))
    return assemble_model(store, store.put(manifest.to_bytes())), rows


def cmd_evaluate(args: argparse.Namespace) -> int:
    from poai.model.config import set_consensus_threads
    from poai.model.expert_train import routed_loss
    from poai.model.genesis import EVAL_WINDOWS, VALIDATION_TEXT
    from poai.model.store import BlobStore
    from poai.model.train import byte_tensor, eval_windows

    g = _gov(args)
    snap, epoch = _scheduled_snapshot(g, args.id)
    active = _in_effect(g)
    store = BlobStore(Path(args.datadir) / "blobs")
    set_consensus_threads()
    old, old_rows = _snapshot_model(g, active, store)
    new, new_rows = _snapshot_model(g, snap, store)
    windows = eval_windows(byte_tensor(VALIDATION_TEXT.read_bytes()), 64,
                           args.eval_windows or EVAL_WINDOWS)
    changed = [(r, i) for r, row in enumerate(new_rows) for i, h in enumerate(row)
               if old_rows[r][i] != h]
    slots = changed or [(0, 0)]
    result: dict[str, Any] = {"proposal": str(args.id), "snapshot": snap, "active": active,
                              "activation_epoch": epoch, "windows": int(windows.shape[0]),
                              "changed": [f"layer{r}.expert{i}" for r, i in changed],
                              "routed": {}}
    for r, i in slots:
        before, after = routed_loss(old, windows, r, i), routed_loss(new, windows, r, i)
        result["overall_before"], result["overall_after"] = before.overall, after.overall
        if (r, i) in changed:
            result["routed"][f"layer{r}.expert{i}"] = {
                "tokens": before.routed_tokens, "before": round(before.routed, 4),
                "after": round(after.routed, 4), "delta": round(before.routed - after.routed, 4)}
    result["delta"] = round(result["overall_before"] - result["overall_after"], 6)
    for k in ("overall_before", "overall_after"):
        result[k] = round(result[k], 6)
    result["gate"] = _gate_check(g, snap, old, new)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"proposal {args.id}: snapshot {snap} (active now: {active}) from epoch {epoch}\n"
          f"validation loss over {result['windows']} windows (nats/byte; delta > 0 is better)\n"
          f"  all tokens  {result['overall_before']:.4f} -> {result['overall_after']:.4f}  "
          f"delta {result['delta']:+.4f}")
    for name, v in result["routed"].items():
        print(f"  {name} ({v['tokens']} routed tokens)  {v['before']:.4f} -> "
              f"{v['after']:.4f}  delta {v['delta']:+.4f}")
    gate = result["gate"]
    print(f"quality gate ({gate['windows']} windows, minimum {gate['min_delta']:.6f}): claimed "
          f"delta {gate['claimed_delta']}, recomputed {gate['recomputed_delta']:+.6f} -> "
          f"{'PASSES' if gate['accepted'] else 'FAILS'}: {gate['reason']}")
    return 0


def _gate_check(g: Gov, snap: int, base_model: Any, new_model: Any) -> dict[str, Any]:
    """The quality gate's decision on the snapshot's claim, recomputed here (as every node
    does at activation) against the snapshot in effect now."""
    from poai.quiz.gate import judge

    params = _gate_params(g)
    base_id, claim = g.call("ModelRegistry", "snapshotClaim", snap)
    base = _window_losses(base_model, params)
    new = _window_losses(new_model, params)
    verdict = judge(bytes(claim), base, new, params)
    in_effect = _in_effect(g)
    accepted, reason = verdict.accepted, verdict.reason
    if int(base_id) == 0:
        accepted, reason = False, "the snapshot carries no quality claim"
    elif int(base_id) != in_effect:
        accepted = False
        reason = (f"the claim is measured against snapshot {base_id}, but snapshot {in_effect} "
                  "is in effect now")
    return {"accepted": accepted, "reason": reason, "base": int(base_id),
            "windows": params.windows, "min_delta": float(params.min_delta),
            "claimed_delta": None if verdict.delta is None else round(float(verdict.delta), 6),
            "recomputed_delta": round((sum(base) - sum(new)) / len(base), 6)}


# ---- poai expert propose -------------------------------------------------------------------

def cmd_expert_propose(args: argparse.Namespace) -> int:
    from poai.model.genesis import genesis_store
    from poai.model.snapshot import read_manifest
    from poai.model.store import BlobStore

    store = BlobStore(Path(args.datadir) / "blobs")
    genesis = genesis_store()
    manifest = read_manifest(store if store.has(args.snapshot) else genesis, args.snapshot)
    g = _gov(args)
    spec = manifest.spec
    active = _in_effect(g)
    active_ids = g.call("ModelRegistry", "snapshotExperts", active)
    claim, delta, params = _claim(g, active, store, genesis, args.snapshot)
    print(f"validation claim: {params.windows} windows, improvement {float(delta):+.6f} "
          f"nats/byte over snapshot {active} (minimum {float(params.min_delta):.6f})",
          file=sys.stderr)
    if delta < params.min_delta and not args.force:
        raise GovError(f"the snapshot improves the validation loss by {float(delta):.6f} "
                       f"nats/byte, below the chain's minimum {float(params.min_delta):.6f}: "
                       "the quality gate would keep the current model (--force proposes it "
                       "anyway)")
    ids = []
    for layer, row in enumerate(manifest.experts):
        for index, digest in enumerate(row):
            payload = bytes.fromhex(digest)
            eid = g.call("ModelRegistry", "expertByPayload", payload)
            if eid == 0:
                blob = store.get(digest) if store.has(digest) else genesis.get(digest)
                parent = active_ids[layer * spec.num_local_experts + index]
                g.send("ModelRegistry", "registerExpert", f"layer{layer}.expert{index}", layer,
                       index, payload, len(blob), chunk_hashes(blob), [parent])
                eid = g.call("ModelRegistry", "expertByPayload", payload)
                print(f"registered layer{layer}.expert{index} as expert {eid} ({len(blob)} "
                      f"bytes)", file=sys.stderr)
            if not g.call("ModelRegistry", "payloadComplete", eid):
                received = g.call("ModelRegistry", "chunksReceived", eid)
                blob = store.get(digest) if store.has(digest) else genesis.get(digest)
                chunks = split_chunks(blob)
                for k in range(received, len(chunks)):
                    g.send("ModelRegistry", "uploadChunk", eid, k, chunks[k])
                    print(f"  chunk {k + 1}/{len(chunks)} on chain", file=sys.stderr)
            ids.append(eid)
    receipt = g.send("ModelRegistry", "registerClaimedSnapshot", bytes.fromhex(manifest.trunk),
                     ids, active, claim)
    snap = g.call("ModelRegistry", "snapshotCount")
    gov = g.c["PoAIGovernor"].functions
    delay = gov.votingDelay().call() + gov.votingPeriod().call()
    min_delay = g.c["PoAITimelock"].functions.getMinDelay().call()
    eb = g.call("ModelRegistry", "epochBlocks")
    # Blocks until execution at worst one a second (the node never stamps ahead of the clock).
    margin = delay + min_delay + 8
    epoch = args.activation_epoch or (receipt["blockNumber"] + margin) // eb + 1
    call = g.c["ModelRegistry"].encode_abi("scheduleSnapshot", [snap, epoch])
    desc = args.description or f"Activate model snapshot {snap} ({args.snapshot}) at epoch " \
        f"{epoch}"
    g.send("PoAIGovernor", "propose", [g.c["ModelRegistry"].address], [0],
           [bytes.fromhex(call[2:])], desc)
    pid = g.c["PoAIGovernor"].functions.hashProposal(
        [g.c["ModelRegistry"].address], [0], [bytes.fromhex(call[2:])],
        Web3.keccak(text=desc)).call()
    print(json.dumps({"snapshot": snap, "manifest": args.snapshot, "experts": ids,
                      "activation_epoch": epoch, "proposal": str(pid), "description": desc,
                      "base": active, "claimed_delta": float(delta)}))
    return 0


def _claim(g: Gov, base: int, store: Any, genesis: Any, manifest_hash: str
           ) -> tuple[bytes, Any, Any]:
    """(claim bytes, claimed delta, gate params): both snapshots' quantized per-window
    validation losses, the base from the chain, the new one from the local store."""
    from poai.model.config import set_consensus_threads
    from poai.model.snapshot import assemble_model
    from poai.quiz.gate import claim_for, encode_claim

    params = _gate_params(g)
    set_consensus_threads()
    base_model, _ = _snapshot_model(g, base, store)
    from poai.model.snapshot import read_manifest

    source = store if store.has(manifest_hash) else genesis
    for h in dict.fromkeys(read_manifest(source, manifest_hash).blob_hashes()):
        if not store.has(h):
            store.put(genesis.get(h))  # (get re-checks the hash; a blob in neither: BlobError)
    store.put(source.get(manifest_hash))
    new_model = assemble_model(store, manifest_hash)
    claim = claim_for(_window_losses(base_model, params), _window_losses(new_model, params),
                      params.grid_bits)
    return encode_claim(claim), claim.delta(params.grid_bits), params


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``poai gov ...`` (``poai expert propose`` is added by :func:`add_expert_propose`)."""
    gov = subparsers.add_parser("gov", help="governance: stake, delegate, proposals, vote, "
                                "queue, execute")
    sub = gov.add_subparsers(dest="gov_command", required=True)

    def leaf(name: str, text: str, func: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        _common(p)
        p.set_defaults(func=_run(func))
        return p

    leaf("stake", "deposit POAI into StakedPOAI (voting power)", cmd_stake).add_argument(
        "amount", type=_ether, help="amount in POAI, e.g. 1000")
    leaf("delegate", "delegate your votes (default: to yourself)", cmd_delegate).add_argument(
        "to", nargs="?", help="address (default: the sender)")
    leaf("upload-dataset", "put a dataset file on chain (DatasetDAO), so every node holds it",
         cmd_upload_dataset).add_argument("file", help="the dataset file (poai dataset build)")
    leaf("proposals", "list the Governor's proposals", cmd_proposals)
    leaf("show", "one proposal: state, votes, deadlines", cmd_show).add_argument(
        "id", type=int, help="proposal id")
    ev = leaf("evaluate", "recompute a model proposal's validation loss locally (before you "
              "vote): delta overall and on the tokens routed to each changed expert",
              cmd_evaluate)
    ev.add_argument("id", type=int, help="proposal id")
    ev.add_argument("--datadir", default=str(Path.home() / ".poai" / "devnet"),
                    help="data dir of a node of this chain (its blobs/ holds the experts)")
    ev.add_argument("--eval-windows", type=int, help="validation windows (default 1024)")
    v = leaf("vote", "vote on an active proposal", cmd_vote)
    v.add_argument("id", type=int, help="proposal id")
    v.add_argument("support", choices=sorted(SUPPORT))
    v.add_argument("--reason", help="reason recorded with the vote")
    leaf("queue", "queue a succeeded proposal in the timelock", cmd_queue).add_argument(
        "id", type=int, help="proposal id")
    leaf("execute", "execute a queued proposal after the timelock", cmd_execute).add_argument(
        "id", type=int, help="proposal id")


def add_expert_propose(expert_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = expert_sub.add_parser(
        "propose", help="put a snapshot's new experts on chain and propose it to the Governor",
        description="Register every expert of the snapshot that the registry does not know "
        "(its bytes in uploadChunk transactions), register the snapshot, and propose "
        "scheduleSnapshot at a future epoch.")
    p.add_argument("--snapshot", required=True,
                   help="manifest hash (e.g. the candidate `poai expert train` printed)")
    p.add_argument("--datadir", default=str(Path.home() / ".poai" / "devnet"),
                   help="data dir whose blobs/ holds the snapshot (default ~/.poai/devnet)")
    p.add_argument("--activation-epoch", type=int, help="default: the first epoch after the "
                   "vote and the timelock")
    p.add_argument("--description", help="proposal text")
    p.add_argument("--force", action="store_true", help="propose even when the claimed "
                   "improvement is below the chain's minimum (the gate will reject it)")
    _common(p)
    p.set_defaults(func=_run(cmd_expert_propose))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rpc", default="http://127.0.0.1:8545", help="node RPC URL")
    p.add_argument("--key", help="private key, hex")
    p.add_argument("--key-file", help="file holding a hex private key")
    p.add_argument("--keystore", help="encrypted keystore file (e.g. from `poai account new`)")
    p.add_argument("--password-file", help="file holding the keystore password (else a prompt)")
    p.add_argument("--dev-account", type=int, help="dev account N (0..9) of --dev chains")
    p.add_argument("--json", action="store_true", help="print JSON")
