"""Helpers shared by the test directories (tests/ is on pytest's pythonpath): the tiny real
quiz chain (poai_tiny), the RPC test node and client (devnode, rpcclient, contract), node
processes (nodeproc) and P2P helpers (p2p_helpers, p2p_chainmaker)."""
