import { expect } from "chai";
import {
  ethers, networkHelpers, deploySystem, UNBONDING_BLOCKS, MIN_STAKE, blockNumber,
} from "./helpers/setup.js";

const E = (n) => ethers.parseEther(String(n));

describe("StakedPOAI", function () {
  async function fixture() {
    return deploySystem();
  }

  // A bare token whose "market" is a plain account, to drive lock/unlock/slash directly.
  async function bareFixture() {
    const [deployer, marketEoa, alice, bob] = await ethers.getSigners();
    const staked = await ethers.deployContract("StakedPOAI", [UNBONDING_BLOCKS]);
    await staked.setMarket(marketEoa.address);
    return { deployer, marketEoa, alice, bob, staked };
  }

  it("wraps native POAI 1:1 and keeps balance == supply + unbonding", async function () {
    const { staked, alice } = await networkHelpers.loadFixture(fixture);
    { const tx = await staked.connect(alice).deposit({ value: E(5) });
    await expect(tx).to.emit(staked, "Deposited").withArgs(alice.address, E(5));
    await expect(tx).to.changeEtherBalances(ethers, [alice, staked], [-E(5), E(5)]); }
    expect(await staked.balanceOf(alice)).to.equal(E(5));
    expect(await staked.totalSupply()).to.equal(E(5));
    await staked.connect(alice).requestWithdrawal(E(2));
    expect(await ethers.provider.getBalance(staked)).to.equal(
      (await staked.totalSupply()) + (await staked.totalUnbonding()),
    );
  });

  it("rejects a zero deposit and a zero withdrawal", async function () {
    const { staked, alice } = await networkHelpers.loadFixture(fixture);
    await expect(staked.connect(alice).deposit()).to.be.revertedWithCustomError(staked, "ZeroAmount");
    await expect(staked.connect(alice).requestWithdrawal(0)).to.be.revertedWithCustomError(staked, "ZeroAmount");
  });

  it("has name, symbol and a block-number clock", async function () {
    const { staked } = await networkHelpers.loadFixture(fixture);
    expect(await staked.name()).to.equal("Staked POAI");
    expect(await staked.symbol()).to.equal("sPOAI");
    expect(await staked.CLOCK_MODE()).to.equal("mode=blocknumber&from=default");
    expect(await staked.clock()).to.equal(await blockNumber());
  });

  it("gives voting power only after delegation, and removes it on withdrawal request", async function () {
    const { staked, alice } = await networkHelpers.loadFixture(fixture);
    await staked.connect(alice).deposit({ value: E(5) });
    expect(await staked.getVotes(alice)).to.equal(0n);
    await staked.connect(alice).delegate(alice.address);
    expect(await staked.getVotes(alice)).to.equal(E(5));
    await staked.connect(alice).requestWithdrawal(E(3));
    expect(await staked.getVotes(alice)).to.equal(E(2));
  });

  it("unbonds: request, wait the delay, claim; requests add up and restart the delay", async function () {
    const { staked, alice } = await networkHelpers.loadFixture(fixture);
    await staked.connect(alice).deposit({ value: E(5) });
    await expect(staked.connect(alice).requestWithdrawal(E(1))).to.emit(staked, "WithdrawalRequested");
    let [amount, release] = await staked.unbonding(alice);
    expect(amount).to.equal(E(1));
    expect(release).to.equal((await blockNumber()) + UNBONDING_BLOCKS);
    await networkHelpers.mine(10);
    await staked.connect(alice).requestWithdrawal(E(1));
    [amount, release] = await staked.unbonding(alice);
    expect(amount).to.equal(E(2));
    expect(release).to.equal((await blockNumber()) + UNBONDING_BLOCKS);
    await expect(staked.connect(alice).claimWithdrawal())
      .to.be.revertedWithCustomError(staked, "StillUnbonding").withArgs(release);
    await networkHelpers.mineUpTo(release - 1n);
    { const tx = await staked.connect(alice).claimWithdrawal();
    await expect(tx).to.emit(staked, "WithdrawalClaimed").withArgs(alice.address, E(2));
    await expect(tx).to.changeEtherBalances(ethers, [alice, staked], [E(2), -E(2)]); }
    expect(await staked.totalUnbonding()).to.equal(0n);
    await expect(staked.connect(alice).claimWithdrawal()).to.be.revertedWithCustomError(staked, "NothingToClaim");
  });

  it("refuses to withdraw more than the balance", async function () {
    const { staked, alice } = await networkHelpers.loadFixture(fixture);
    await staked.connect(alice).deposit({ value: E(1) });
    await expect(staked.connect(alice).requestWithdrawal(E(2)))
      .to.be.revertedWithCustomError(staked, "ERC20InsufficientBalance");
  });

  it("sets the market once, only by the deployer, never to zero", async function () {
    const [deployer, alice] = await ethers.getSigners();
    const staked = await ethers.deployContract("StakedPOAI", [UNBONDING_BLOCKS]);
    await expect(staked.connect(alice).setMarket(alice.address)).to.be.revertedWithCustomError(staked, "NotDeployer");
    await expect(staked.setMarket(ethers.ZeroAddress)).to.be.revertedWithCustomError(staked, "ZeroAddress");
    await expect(staked.setMarket(alice.address)).to.emit(staked, "MarketSet").withArgs(alice.address);
    await expect(staked.setMarket(deployer.address)).to.be.revertedWithCustomError(staked, "MarketAlreadySet");
    expect(await staked.deployer()).to.equal(deployer.address);
  });

  it("lets only the market lock, unlock and slash", async function () {
    const { staked, alice, bob } = await networkHelpers.loadFixture(bareFixture);
    for (const call of [
      staked.connect(alice).lock(bob, 1),
      staked.connect(alice).unlock(bob, 1),
      staked.connect(alice).slash(bob, 1),
    ]) {
      await expect(call).to.be.revertedWithCustomError(staked, "NotMarket");
    }
  });

  it("locked stake can be neither transferred nor withdrawn, and unlocks", async function () {
    const { staked, marketEoa, alice, bob } = await networkHelpers.loadFixture(bareFixture);
    await staked.connect(alice).deposit({ value: E(10) });
    await expect(staked.connect(marketEoa).lock(alice, E(8))).to.emit(staked, "StakeLocked").withArgs(alice.address, E(8));
    await expect(staked.connect(marketEoa).lock(alice, E(3)))
      .to.be.revertedWithCustomError(staked, "InsufficientUnlocked").withArgs(E(2), E(3));
    await expect(staked.connect(alice).transfer(bob, E(3)))
      .to.be.revertedWithCustomError(staked, "LockedStakeMoved").withArgs(alice.address);
    await expect(staked.connect(alice).requestWithdrawal(E(3)))
      .to.be.revertedWithCustomError(staked, "LockedStakeMoved");
    await staked.connect(alice).transfer(bob, E(2)); // the unlocked part moves
    await expect(staked.connect(marketEoa).unlock(alice, E(8))).to.emit(staked, "StakeUnlocked");
    await staked.connect(alice).requestWithdrawal(E(8));
    expect(await staked.lockedOf(alice)).to.equal(0n);
  });

  it("slashes stake first, then unbonding, sending the native POAI to the market", async function () {
    const { staked, marketEoa, alice } = await networkHelpers.loadFixture(bareFixture);
    await staked.connect(alice).deposit({ value: E(10) });
    await staked.connect(alice).requestWithdrawal(E(7)); // tries to escape with 7
    expect(await staked.slashableOf(alice)).to.equal(E(10));
    { const tx = await staked.connect(marketEoa).slash(alice, E(5));
    await expect(tx).to.emit(staked, "Slashed").withArgs(alice.address, E(3), E(2), marketEoa.address);
    await expect(tx).to.changeEtherBalances(ethers, [marketEoa, staked], [E(5), -E(5)]); }
    expect(await staked.balanceOf(alice)).to.equal(0n);
    const [amount] = await staked.unbonding(alice);
    expect(amount).to.equal(E(5));
    expect(await staked.totalUnbonding()).to.equal(E(5));
    await expect(staked.connect(marketEoa).slash(alice, E(6)))
      .to.be.revertedWithCustomError(staked, "SlashExceedsStake").withArgs(E(5), E(6));
    expect(await ethers.provider.getBalance(staked)).to.equal(
      (await staked.totalSupply()) + (await staked.totalUnbonding()),
    );
  });

  it("slashing releases the lock that covered it", async function () {
    const { staked, marketEoa, alice } = await networkHelpers.loadFixture(bareFixture);
    await staked.connect(alice).deposit({ value: E(10) });
    await staked.connect(marketEoa).lock(alice, E(4));
    await staked.connect(marketEoa).slash(alice, E(4));
    expect(await staked.lockedOf(alice)).to.equal(0n);
    expect(await staked.balanceOf(alice)).to.equal(E(6));
  });

  it("the market's worker stake can't be withdrawn while it backs a job", async function () {
    const { staked, market, registry, bob, carol } = await networkHelpers.loadFixture(fixture);
    await staked.connect(bob).deposit({ value: MIN_STAKE });
    await market.connect(bob).registerWorker();
    await market.connect(carol).postJob(1, "0x41", 8, 0, 1_000_000, 0, (await blockNumber()) + 50n, { value: E(1) });
    await market.connect(bob).claimJob(1);
    await expect(staked.connect(bob).requestWithdrawal(1n)).to.be.revertedWithCustomError(staked, "LockedStakeMoved");
    expect(await registry.snapshotCount()).to.equal(1n);
  });
});
