"""The `poai` command: init, node, account, status (and the model team's dataset/model commands).

Errors a user can cause (a bad argument, a port in use, a data dir of another chain or a corrupted
one) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NoReturn, cast

EXIT_USAGE = 2
DEFAULT_DATADIR = Path.home() / ".poai" / "devnet"
CHAIN_FILE = "chain.json"  # which genesis a data dir belongs to
CURRENCY = "POAI"
LOG_LEVELS = ("debug", "info", "warning", "error")


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


# ------------------------------------------------------------------ data dir
def _chain_record(datadir: Path) -> dict[str, Any] | None:
    path = datadir / CHAIN_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or "genesisHash" not in record:
            raise ValueError("missing genesisHash")
        return record
    except ValueError as exc:
        raise CliError(f"data dir {datadir} is corrupted: {CHAIN_FILE} unreadable ({exc})") from exc


def _load_config(genesis: str | None) -> Any:
    from poai.chain.config import ConfigError, load_genesis_config
    try:
        return load_genesis_config(genesis)
    except (ConfigError, OSError) as exc:
        raise CliError(str(exc)) from exc


def init_datadir(datadir: Path, genesis: str | None) -> tuple[Any, dict[str, Any]]:
    """Bind ``datadir`` to a genesis (idempotent); refuse a data dir of another chain."""
    from poai.chain.chain import genesis_hash
    from poai.chain.config import DEFAULT_CONFIG

    config = _load_config(genesis)
    ghash = "0x" + genesis_hash(config).hex()
    record = _chain_record(datadir)
    if record is not None:
        if record["genesisHash"] != ghash or record.get("chainId") != config.chain_id:
            raise CliError(
                f"data dir {datadir} belongs to another chain (genesis {record['genesisHash']}, "
                f"chain id {record.get('chainId')}); use another --datadir")
        return config, record
    if datadir.exists() and not datadir.is_dir():
        raise CliError(f"data dir {datadir} is not a directory")
    record = {"chainId": config.chain_id, "genesisHash": ghash,
              "genesis": str(Path(genesis).resolve() if genesis else DEFAULT_CONFIG)}
    try:
        datadir.mkdir(parents=True, exist_ok=True)
        (datadir / CHAIN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        from poai.datadir import path_problem
        raise CliError(f"cannot use {datadir} as a data dir: {path_problem(exc)}") from exc
    return config, record


def open_datadir(datadir: Path, genesis: str | None) -> Any:
    record = _chain_record(datadir)
    if record is None:
        return init_datadir(datadir, genesis)[0]
    return init_datadir(datadir, genesis or record.get("genesis"))[0]


# ------------------------------------------------------------------ commands
def cmd_init(args: argparse.Namespace) -> int:
    config, record = init_datadir(Path(args.datadir), args.genesis)
    print(f"initialised {args.datadir}: chain id {config.chain_id}, "
          f"genesis {record['genesisHash']}")
    return 0


def _parse_address(text: str) -> bytes:
    body = text[2:] if text.startswith("0x") else text
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise argparse.ArgumentTypeError(f"not a 20-byte hex address: {text!r}")
    return raw


def _parse_origins(text: str) -> tuple[str, ...]:
    origins = tuple(o.strip() for o in text.split(",") if o.strip())
    if not origins:
        raise argparse.ArgumentTypeError("empty origin list")
    return origins


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {value}")
    return value


def banner(config: Any, url: str, dev: bool, mining: bool, coinbase: bytes) -> str:
    from eth_utils.address import to_checksum_address
    lines = ["", "PoAI node", "=========", f"Chain id:     {config.chain_id}",
             f"RPC URL:      {url}", f"WebSocket:    {url.replace('http', 'ws', 1)}",
             f"Mining:       {'yes' if mining else 'no'}"
             + (f" (coinbase {to_checksum_address(coinbase)})" if mining else "")]
    if dev:
        from poai.chain.devaccounts import DEV_MNEMONIC, dev_accounts
        mnemonic = config.dev_mnemonic or DEV_MNEMONIC
        accounts = dev_accounts(mnemonic, 10)
        lines += ["", "Available Accounts", "=================="]
        lines += [f"({a.index}) {a.checksum_address}" for a in accounts]
        lines += ["", "Private Keys", "=================="]
        lines += [f"({a.index}) 0x{a.private_key.hex()}" for a in accounts]
        lines += ["", f"Mnemonic:     {mnemonic}", "Derivation:   m/44'/60'/0'/0/{index}",
                  "These keys are public: use them on this devnet only."]
    lines += ["", "MetaMask (Settings > Networks > Add a network manually)",
              "=======================================================",
              "Network name:    PoAI devnet", f"New RPC URL:     {url}",
              f"Chain ID:        {config.chain_id}", f"Currency symbol: {CURRENCY}", ""]
    return "\n".join(lines)


def cmd_node(args: argparse.Namespace) -> int:
    from poai.compat import UntestedLibrary, check_versions
    try:
        check_versions()
    except UntestedLibrary as exc:
        raise CliError(str(exc)) from exc
    datadir = Path(args.datadir)
    config = open_datadir(datadir, args.genesis)
    from poai.node import Node
    coinbase = args.coinbase
    if coinbase is None:
        from poai.chain.devaccounts import DEV_MNEMONIC, dev_accounts
        coinbase = dev_accounts(config.dev_mnemonic or DEV_MNEMONIC, 1)[0].address \
            if args.dev else b"\x00" * 20
    from poai.p2p.cli import p2p_network  # P2P (owned by the p2p package)
    node = Node(datadir, config, mine=args.mine, miner_workers=args.miner_workers,
                coinbase=coinbase, network=p2p_network(args), dev=args.dev)
    from poai.rpc.server import new_event_loop
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(_serve(node, config, args, coinbase))


async def _serve(node: Any, config: Any, args: argparse.Namespace, coinbase: bytes) -> int:
    from poai.rpc.server import RpcServer

    accounts: tuple[bytes, ...] = ()
    if args.dev:
        from poai.chain.devaccounts import DEV_MNEMONIC, dev_accounts
        accounts = tuple(a.address for a in dev_accounts(config.dev_mnemonic or DEV_MNEMONIC, 10))
    server = RpcServer(node, host=args.rpc_addr, port=args.rpc_port, cors_origins=args.cors,
                       accounts=accounts, admin_api=True if args.rpc_admin else None)
    from poai.api.service import ApiStartError, attach_api  # -- inference API --
    api = attach_api(server, node, args)
    from poai.market.contract import MarketError  # -- inference market --
    from poai.market.service import attach_market
    try:
        market = attach_market(server, node, args)
    except MarketError as exc:
        raise CliError(str(exc)) from exc
    try:
        await server.start(hold=True)  # requests wait until the node has started
    except OSError as exc:
        raise CliError(f"cannot listen on {args.rpc_addr}:{args.rpc_port}: "
                       f"{exc.strerror or exc} (is another node running? use --rpc-port)"
                       ) from exc
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    failed: list[Exception] = []  # a block that could not be written stops the node

    def storage_failed(exc: Exception) -> None:
        failed.append(exc)
        loop.call_soon_threadsafe(stop.set)

    node.on_storage_failure(storage_failed)
    # deferred: libp2p loads only when networking runs
    from poai.datadir import DatadirError
    from poai.db.leveldb import DatabaseError
    from poai.node import NetworkStartError
    from poai.p2p.cli import print_listen_addrs
    try:
        await loop.run_in_executor(None, node.start)
    except NetworkStartError as exc:  # the node has closed its chain again
        await server.stop()
        from poai.p2p.cli import p2p_port
        cause = exc.__cause__
        why = (cause.strerror if isinstance(cause, OSError) and cause.strerror
               else str(cause or exc)).lower()
        raise CliError(f"cannot listen for peers on {args.p2p_addr}:{p2p_port(args)}: {why} "
                       "(is another node running? use --p2p-port or --no-p2p)") from exc
    except (DatadirError, DatabaseError) as exc:  # DatabaseError: e.g. genesis on a full disk
        await server.stop()
        raise CliError(str(exc)) from exc
    except Exception as exc:
        await server.stop()
        raise CliError(f"cannot open the chain in {args.datadir}: {exc} (nothing in it was "
                       "changed; use another --datadir for a new chain)") from exc
    # -- P2P (owned by the p2p package; the node starts and stops its network) --
    print_listen_addrs(node.network)
    if node.network is not None:
        def network_failed(exc: BaseException) -> None:
            failed.append(RuntimeError(f"the P2P network stopped: {exc!r} (the node stops "
                                       "so that a supervisor restarts it whole)"))
            loop.call_soon_threadsafe(stop.set)

        node.network.on_failure(network_failed)
    # -- end P2P --
    if api is not None:  # -- inference API --
        try:
            await api.start(server, args)
        except ApiStartError as exc:
            await server.stop()
            await loop.run_in_executor(None, node.stop)
            raise CliError(str(exc)) from exc
    if market is not None:  # -- inference market --
        market.start()
    server.accept_requests()
    print(banner(config, server.url, args.dev, args.mine, coinbase), flush=True)
    print(f"Listening on {server.url}", flush=True)
    if api is not None:
        print(f"OpenAI API on {api.url}", flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("shutting down", flush=True)
    if market is not None:  # -- inference market --
        await loop.run_in_executor(None, market.stop)
    await server.stop()
    if api is not None:
        await api.stop()
    await loop.run_in_executor(None, node.stop)
    if failed:
        raise CliError(str(failed[0]))
    return 0


def _keystore(datadir: Path) -> Path:
    return datadir / "keystore"


def _password(args: argparse.Namespace, confirm: bool) -> str:
    if args.password_file:
        try:
            return Path(args.password_file).read_text().rstrip("\n")
        except OSError as exc:
            raise CliError(f"cannot read password file: {exc}") from exc
    if not sys.stdin.isatty():
        raise CliError("no terminal for a password prompt: use --password-file")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Repeat password: ") != first:
        raise CliError("passwords do not match")
    return first


def cmd_account_new(args: argparse.Namespace) -> int:
    from eth_account import Account
    password = _password(args, confirm=True)
    acct = Account.create()
    keystore = _keystore(Path(args.datadir))
    keystore.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime())
    path = keystore / f"UTC--{stamp}.000000000Z--{acct.address[2:].lower()}"
    path.write_text(json.dumps(Account.encrypt(acct.key, password)))
    path.chmod(0o600)
    print(f"address {acct.address}")
    print(f"keystore {path}")
    return 0


def cmd_account_list(args: argparse.Namespace) -> int:
    from eth_utils.address import to_checksum_address
    keystore = _keystore(Path(args.datadir))
    files = sorted(keystore.glob("UTC--*")) if keystore.is_dir() else []
    for i, path in enumerate(files):
        try:
            address = to_checksum_address("0x" + json.loads(path.read_text())["address"])
        except (ValueError, KeyError) as exc:
            raise CliError(f"keystore file {path} is corrupted ({exc})") from exc
        print(f"#{i}: {address} keystore://{path}")
    if not files:
        print(f"no accounts in {keystore}")
    return 0


def _rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(url, data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            reply = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CliError(f"cannot reach a node at {url}: {getattr(exc, 'reason', exc)}") from exc
    if "error" in reply:
        raise CliError(f"{method} failed: {reply['error'].get('message')}")
    return reply["result"]


def cmd_status(args: argparse.Namespace) -> int:
    url = args.rpc
    head = _rpc(url, "eth_getBlockByNumber", "latest", False)
    pool = _rpc(url, "txpool_status")
    status = {
        "rpc": url,
        "client": _rpc(url, "web3_clientVersion"),
        "chainId": int(_rpc(url, "eth_chainId"), 16),
        "head": int(head["number"], 16),
        "headHash": head["hash"],
        "headAgeSeconds": max(0, int(time.time()) - int(head["timestamp"], 16)),
        "difficulty": int(head["difficulty"], 16),
        "baseFeePerGas": int(head.get("baseFeePerGas", "0x0"), 16),
        "peers": int(_rpc(url, "net_peerCount"), 16),
        "mining": _rpc(url, "eth_mining"),
        "attemptsPerSecond": int(_rpc(url, "eth_hashrate"), 16),
        "txpool": {k: int(v, 16) for k, v in pool.items()},
    }
    try:
        epoch = _rpc(url, "poai_epoch")
        status["epoch"] = int(epoch["epoch"], 16)
    except CliError:
        pass
    if args.json:
        print(json.dumps(status))
    else:
        print(status_text(status))
    return 0


def status_text(status: dict[str, Any]) -> str:
    """`poai status` for people: one aligned "label  value" line per fact."""
    pool = status["txpool"]
    rows = [
        ("Node", f"{status['rpc']} ({status['client']})"),
        ("Chain id", str(status["chainId"])),
        ("Head", f"#{status['head']} {status['headHash']} ({status['headAgeSeconds']} s ago)"),
        ("Difficulty", f"{status['difficulty']:,}"),
        ("Base fee", f"{status['baseFeePerGas'] / 1e9:.9g} gwei"),
    ]
    if "epoch" in status:
        rows.append(("Epoch", str(status["epoch"])))
    rows += [
        ("Mining", (f"yes, {status['attemptsPerSecond']} attempts/s" if status["mining"]
                    else "no")),
        ("Peers", str(status["peers"])),
        ("Tx pool", f"{pool.get('pending', 0)} pending, {pool.get('queued', 0)} queued"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="poai", description="PoAI node: a Proof-of-AI Ethereum-compatible "
                     "chain sealed by quiz-loss proofs.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug)")
    # (typed as plain ArgumentParsers: the packages' add_commands take those)
    sub = cast("argparse._SubParsersAction[argparse.ArgumentParser]",
               parser.add_subparsers(dest="command", required=True, parser_class=_Parser))

    def datadir_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--datadir", default=str(DEFAULT_DATADIR),
                       help=f"data directory (default {DEFAULT_DATADIR})")

    p = sub.add_parser("init", help="create a data dir for a genesis config")
    datadir_arg(p)
    p.add_argument("--genesis", help="genesis config JSON (default: the bundled devnet)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("node", help="run a node: JSON-RPC over HTTP and WebSocket, optional mining")
    datadir_arg(p)
    p.add_argument("--genesis", help="genesis config for a new data dir (default: devnet)")
    p.add_argument("--dev", action="store_true",
                   help="development node: 10 funded unlocked accounts and anvil's "
                        "evm_*/anvil_* methods (README: Developer node)")
    p.add_argument("--mine", action="store_true", help="mine blocks (quiz-loss proofs)")
    p.add_argument("--miner-workers", type=_positive, default=1, metavar="N",
                   help="miner worker processes, one per core (default 1)")
    p.add_argument("--rpc-addr", default="127.0.0.1", help="RPC listen address")
    p.add_argument("--rpc-port", type=_port, default=8545, help="RPC port (default 8545)")
    p.add_argument("--rpc-admin", action="store_true",
                   help="serve admin_* (node and peer info) also when --rpc-addr is not "
                        "loopback (on loopback it always is)")
    p.add_argument("--cors", type=_parse_origins, default=("*",), metavar="ORIGINS",
                   help='comma-separated allowed CORS origins (default "*")')
    p.add_argument("--coinbase", type=_parse_address, metavar="ADDR",
                   help="address receiving block rewards (default: dev account 0 with --dev)")
    p.add_argument("--log-level", choices=LOG_LEVELS, type=str.lower, default=None,
                   help="level of the node's own logs (default: info when mining, "
                        "else warning)")
    # -- P2P (owned by the p2p package) --
    from poai.p2p.cli import add_p2p_arguments
    add_p2p_arguments(p)
    # -- end P2P --
    from poai.api.options import add_api_arguments  # -- inference API --
    add_api_arguments(p)
    from poai.market.options import add_market_arguments  # -- inference market --
    add_market_arguments(p)
    p.set_defaults(func=cmd_node)

    # -- P2P (owned by the p2p package) --
    from poai.p2p.cli import add_devnet_command
    add_devnet_command(sub)
    # -- end P2P --

    p = sub.add_parser("account", help="manage keystore accounts")
    acc = p.add_subparsers(dest="account_command", required=True, parser_class=_Parser)
    for name, func, text in (("new", cmd_account_new, "create an encrypted keystore account"),
                             ("list", cmd_account_list, "list keystore accounts")):
        a = acc.add_parser(name, help=text)
        datadir_arg(a)
        if name == "new":
            a.add_argument("--password-file", help="file holding the password (else a prompt)")
        a.set_defaults(func=func)

    p = sub.add_parser("status", help="show a running node's head, mining and pool")
    p.add_argument("--rpc", default="http://127.0.0.1:8545", help="node RPC URL")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_status)

    from poai.model.commands import add_commands
    add_commands(sub)
    from poai.api.commands import add_commands as add_api_commands
    add_api_commands(sub)
    from poai.governance.commands import add_commands as add_gov_commands  # `poai gov`
    add_gov_commands(sub)
    from poai.market.commands import add_commands as add_market_commands  # `poai market`
    add_market_commands(sub)
    return parser


def configure_logging(args: argparse.Namespace) -> None:
    """-v/-vv for every library; the node's own `poai` loggers at --log-level, or INFO when
    mining (one line per mined block) and quiet otherwise."""
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    level = getattr(args, "log_level", None)
    if level is None and getattr(args, "mine", False) and args.verbose == 0:
        level = "info"
    if level is not None:
        logging.getLogger("poai").setLevel(level.upper())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"poai: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a path a command could not use: one line, not a traceback
        from poai.datadir import path_problem
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"poai: error: {where}{path_problem(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
