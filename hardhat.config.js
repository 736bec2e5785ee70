// Hardhat 3 project for the PoAI contracts. Compiles offline with the npm `solc` (solcjs WASM):
// `path` points Hardhat at it, so nothing is downloaded (without it: HHE905).
import { createRequire } from "node:module";
import { defineConfig } from "hardhat/config";
import hardhatEthers from "@nomicfoundation/hardhat-ethers";
import hardhatEthersChaiMatchers from "@nomicfoundation/hardhat-ethers-chai-matchers";
import hardhatMocha from "@nomicfoundation/hardhat-mocha";
import hardhatNetworkHelpers from "@nomicfoundation/hardhat-network-helpers";

const require = createRequire(import.meta.url);

// Dev keys of the well-known test mnemonic "test test ... junk" (m/44'/60'/0'/0/0..4): devnet only.
const DEV_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
  "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
];

export const SOLC_SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 200 },
};

export default defineConfig({
  plugins: [hardhatEthers, hardhatEthersChaiMatchers, hardhatMocha, hardhatNetworkHelpers],
  solidity: {
    version: "0.8.37",
    path: require.resolve("solc/soljson.js"),
    settings: SOLC_SETTINGS,
  },
  paths: {
    sources: "contracts",
    tests: { mocha: "tests/contracts", solidity: "tests/contracts/solidity" },
  },
  test: { mocha: { timeout: 120000 } },
  networks: {
    poai: {
      type: "http",
      chainType: "l1",
      url: process.env.POAI_RPC_URL ?? "http://127.0.0.1:8545",
      chainId: Number(process.env.POAI_CHAIN_ID ?? 7337),
      accounts: DEV_KEYS,
    },
  },
});
