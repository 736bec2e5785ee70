// viem's test client in anvil mode against a real `poai node --dev`: mine, setBalance,
// impersonateAccount (then a transfer from the impersonated address through the node),
// and the node's unlocked accounts signing (personal_sign, eth_signTypedData_v4).
import {
  createPublicClient, createTestClient, createWalletClient, defineChain, http, parseEther,
  verifyMessage, verifyTypedData, publicActions, walletActions,
} from "viem";

const [url, chainId] = process.argv.slice(2);
const chain = defineChain({
  id: Number(chainId), name: "PoAI devnet",
  nativeCurrency: { name: "POAI", symbol: "POAI", decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const transport = http(url, { timeout: 120_000 });
const pollingInterval = 250; // viem polls receipts every 4 s by default
const test = createTestClient({ chain, mode: "anvil", transport, pollingInterval })
  .extend(publicActions).extend(walletActions);
const client = createPublicClient({ chain, transport, pollingInterval });
const out = {};

const [dev0] = await test.getAddresses();
out.dev0 = dev0;
const start = await client.getBlockNumber();
await test.mine({ blocks: 3 });
out.mined = (await client.getBlockNumber()) - start >= 3n;

const whale = "0x1234567890123456789012345678901234567890";
await test.setBalance({ address: whale, value: parseEther("500") });
out.whaleBalance = (await client.getBalance({ address: whale })).toString();

await test.impersonateAccount({ address: whale });
const wallet = createWalletClient({ chain, transport, pollingInterval });
const to = "0x000000000000000000000000000000000000dEaD";
const before = await client.getBalance({ address: to });
const hash = await wallet.sendTransaction({ account: whale, to, value: parseEther("1.5") });
const receipt = await client.waitForTransactionReceipt({ hash, timeout: 120_000 });
out.impersonated = { status: receipt.status, from: receipt.from,
  delta: ((await client.getBalance({ address: to })) - before).toString() };
await test.stopImpersonatingAccount({ address: whale });
try {
  await wallet.sendTransaction({ account: whale, to, value: 1n });
  out.afterStop = "sent";
} catch (err) {
  out.afterStop = err.details ?? err.shortMessage ?? String(err);
}

const message = "hello PoAI";
const signature = await wallet.signMessage({ account: dev0, message });
out.personalSign = await verifyMessage({ address: dev0, message, signature });
const typed = {
  domain: { name: "PoAI", version: "1", chainId: Number(chainId) },
  types: { Vote: [{ name: "proposal", type: "uint256" }, { name: "support", type: "bool" }] },
  primaryType: "Vote", message: { proposal: 7n, support: true },
};
const typedSig = await wallet.signTypedData({ account: dev0, ...typed });
out.typedData = await verifyTypedData({ address: dev0, ...typed, signature: typedSig });

await test.setCode({ address: whale, bytecode: "0x6001600055" });
out.code = await client.getCode({ address: whale });
await test.setStorageAt({ address: whale, index: 1, value: "0x" + "00".repeat(31) + "2a" });
out.slot1 = await client.getStorageAt({ address: whale, slot: "0x1" });
console.log(JSON.stringify(out));
