// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title DatasetDAO
/// @notice The quiz datasets, commit-reveal: governance (the timelock, owner) schedules an
/// encrypted dataset with a commitment keccak256(key) for a future activation epoch; anyone
/// reveals the key once that epoch has begun, so nobody can precompute the quiz before.
/// Dataset files travel in calldata like expert payloads (ModelRegistry): anyone announces a
/// file by its sha256 (the dataset's content hash), size and chunk hashes, then sends each
/// CHUNK_BYTES chunk in order with `uploadFileChunk`; the contract hashes each chunk against its
/// announcement, and nodes join the chunks into the file while importing the blocks, so a file
/// uploaded before its activation epoch is on every node without P2P or a manual copy. The file
/// is encrypted: carrying it before the key reveal gives nothing away. An announcement whose
/// upload is not complete UPLOAD_WINDOW blocks later expires and may be made again.
/// @dev Dataset ids start at 1 (1 = genesis, whose key is public). Epoch = block.number / epochBlocks.
contract DatasetDAO is Ownable {
    using Checkpoints for Checkpoints.Trace208;

    struct Dataset {
        bytes32 contentHash; // sha256 of the encrypted dataset file
        uint64 recordCount;
        bytes32 keyCommitment; // keccak256(abi.encodePacked(key))
        uint64 activationEpoch;
        bool revealed;
        bytes32 key;
    }

    uint256 public constant CHUNK_BYTES = 120_000;
    uint256 public constant UPLOAD_WINDOW = 21_600;

    uint256 public immutable epochBlocks;
    mapping(bytes32 contentHash => bytes32[]) private _fileChunks;
    mapping(bytes32 contentHash => uint256) public fileChunksReceived;
    mapping(bytes32 contentHash => uint256) public fileAnnouncedAt;
    Dataset[] private _datasets; // index id - 1
    mapping(bytes32 contentHash => uint64) private _fileSize;
    Checkpoints.Trace208 private _schedule; // activation epoch => dataset id

    event DatasetScheduled(
        uint256 indexed datasetId,
        bytes32 contentHash,
        uint64 recordCount,
        bytes32 keyCommitment,
        uint256 indexed activationEpoch
    );
    event KeyRevealed(uint256 indexed datasetId, bytes32 key);
    event FileAnnounced(bytes32 indexed contentHash, uint64 size, uint256 chunks);
    event FileChunkUploaded(bytes32 indexed contentHash, uint256 chunkIndex, bytes32 chunkHash);
    event FileComplete(bytes32 indexed contentHash);

    error InvalidEpochBlocks();
    error ZeroContentHash();
    error ZeroRecordCount();
    error ZeroCommitment();
    error EpochNotInFuture(uint256 activationEpoch, uint256 currentEpoch);
    error EpochBeforeLastScheduled(uint256 activationEpoch, uint256 lastScheduled);
    error UnknownDataset(uint256 datasetId);
    error AlreadyRevealed(uint256 datasetId);
    error NotYetActive(uint256 activationEpoch, uint256 currentEpoch);
    error KeyMismatch();
    error FileAlreadyAnnounced(bytes32 contentHash);
    error UnknownFile(bytes32 contentHash);
    error WrongChunkCount(uint256 expected, uint256 got);
    error FileHashMismatch(bytes32 contentHash, bytes32 chunkHash);
    error FileAlreadyComplete(bytes32 contentHash);
    error DuplicateChunk(bytes32 contentHash, uint256 chunkIndex);
    error ChunkOutOfOrder(bytes32 contentHash, uint256 expected, uint256 got);
    error WrongChunkSize(uint256 chunkIndex, uint256 expected, uint256 got);
    error ChunkHashMismatch(uint256 chunkIndex, bytes32 expected, bytes32 got);
    error UploadExpired(bytes32 contentHash, uint256 announcedAt);

    /// @param owner_ the governance timelock
    /// @param genesisKey the genesis dataset's key, public from the start
    constructor(
        address owner_,
        uint256 epochBlocks_,
        bytes32 genesisContentHash,
        uint64 genesisRecordCount,
        bytes32 genesisKey
    ) Ownable(owner_) {
        if (epochBlocks_ == 0) revert InvalidEpochBlocks();
        epochBlocks = epochBlocks_;
        uint256 id = _add(genesisContentHash, genesisRecordCount, keccak256(abi.encodePacked(genesisKey)), 0);
        _datasets[id - 1].revealed = true;
        _datasets[id - 1].key = genesisKey;
        emit KeyRevealed(id, genesisKey);
    }

    /// @notice Schedules a dataset for a future epoch (timelock only). Scheduling the same epoch
    /// as the last scheduled one replaces that pending choice.
    function scheduleDataset(bytes32 contentHash, uint64 recordCount, bytes32 keyCommitment, uint64 activationEpoch)
        external
        onlyOwner
        returns (uint256 datasetId)
    {
        uint256 nowEpoch = currentEpoch();
        if (activationEpoch <= nowEpoch) revert EpochNotInFuture(activationEpoch, nowEpoch);
        (, uint48 lastKey,) = _schedule.latestCheckpoint();
        if (activationEpoch < lastKey) revert EpochBeforeLastScheduled(activationEpoch, lastKey);
        return _add(contentHash, recordCount, keyCommitment, activationEpoch);
    }

    /// @notice Publishes a dataset's key; accepted only if it matches the commitment and the
    /// dataset's activation epoch has begun.
    function revealKey(uint256 datasetId, bytes32 key) external {
        Dataset storage d = _dataset(datasetId);
        if (d.revealed) revert AlreadyRevealed(datasetId);
        uint256 nowEpoch = currentEpoch();
        if (nowEpoch < d.activationEpoch) revert NotYetActive(d.activationEpoch, nowEpoch);
        if (keccak256(abi.encodePacked(key)) != d.keyCommitment) revert KeyMismatch();
        d.revealed = true;
        d.key = key;
        emit KeyRevealed(datasetId, key);
    }

    /// @notice Announces a dataset file (anyone): its sha256, size and the sha256 of each chunk.
    function announceFile(bytes32 contentHash, uint64 size, bytes32[] calldata chunkHashes) external {
        if (contentHash == bytes32(0)) revert ZeroContentHash();
        uint256 n = (uint256(size) + CHUNK_BYTES - 1) / CHUNK_BYTES;
        if (n == 0 || chunkHashes.length != n) revert WrongChunkCount(n, chunkHashes.length);
        if (n == 1 && chunkHashes[0] != contentHash) revert FileHashMismatch(contentHash, chunkHashes[0]);
        if (_fileChunks[contentHash].length != 0 && !_fileExpired(contentHash)) {
            revert FileAlreadyAnnounced(contentHash);
        }
        _fileChunks[contentHash] = chunkHashes;
        _fileSize[contentHash] = size;
        fileChunksReceived[contentHash] = 0;
        fileAnnouncedAt[contentHash] = block.number;
        emit FileAnnounced(contentHash, size, n);
    }

    /// @notice Carries chunk `chunkIndex` of an announced file (anyone; in order, each once).
    function uploadFileChunk(bytes32 contentHash, uint256 chunkIndex, bytes calldata data) external {
        bytes32[] storage hashes = _fileChunks[contentHash];
        if (hashes.length == 0) revert UnknownFile(contentHash);
        uint256 received = fileChunksReceived[contentHash];
        if (received == hashes.length) revert FileAlreadyComplete(contentHash);
        if (chunkIndex < received) revert DuplicateChunk(contentHash, chunkIndex);
        if (chunkIndex > received) revert ChunkOutOfOrder(contentHash, received, chunkIndex);
        if (_fileExpired(contentHash)) revert UploadExpired(contentHash, fileAnnouncedAt[contentHash]);
        uint256 want = chunkIndex + 1 < hashes.length ? CHUNK_BYTES : _fileSize[contentHash] - chunkIndex * CHUNK_BYTES;
        if (data.length != want) revert WrongChunkSize(chunkIndex, want, data.length);
        bytes32 got = sha256(data);
        if (got != hashes[chunkIndex]) revert ChunkHashMismatch(chunkIndex, hashes[chunkIndex], got);
        fileChunksReceived[contentHash] = received + 1;
        emit FileChunkUploaded(contentHash, chunkIndex, got);
        if (received + 1 == hashes.length) emit FileComplete(contentHash);
    }

    /// @notice The announced chunk hashes of a file (empty if never announced).
    function fileChunkHashes(bytes32 contentHash) external view returns (bytes32[] memory) {
        return _fileChunks[contentHash];
    }

    /// @notice Whether every chunk of the file is on chain.
    function fileComplete(bytes32 contentHash) public view returns (bool) {
        uint256 n = _fileChunks[contentHash].length;
        return n != 0 && fileChunksReceived[contentHash] == n;
    }

    function _fileExpired(bytes32 contentHash) private view returns (bool) {
        return !fileComplete(contentHash) && block.number > fileAnnouncedAt[contentHash] + UPLOAD_WINDOW;
    }

    function currentEpoch() public view returns (uint256) {
        return block.number / epochBlocks;
    }

    function datasetCount() external view returns (uint256) {
        return _datasets.length;
    }

    function dataset(uint256 datasetId) external view returns (Dataset memory) {
        return _dataset(datasetId);
    }

    /// @notice The dataset active at `epoch` and its key (zero while unrevealed).
    function activeDataset(uint256 epoch)
        external
        view
        returns (uint256 datasetId, bytes32 contentHash, uint64 recordCount, bytes32 key, bool revealed)
    {
        datasetId = _schedule.upperLookup(SafeCast.toUint48(epoch));
        Dataset storage d = _datasets[datasetId - 1];
        return (datasetId, d.contentHash, d.recordCount, d.key, d.revealed);
    }

    function _add(bytes32 contentHash, uint64 recordCount, bytes32 keyCommitment, uint64 activationEpoch)
        private
        returns (uint256 datasetId)
    {
        if (contentHash == bytes32(0)) revert ZeroContentHash();
        if (recordCount == 0) revert ZeroRecordCount();
        if (keyCommitment == bytes32(0)) revert ZeroCommitment();
        _datasets.push(Dataset(contentHash, recordCount, keyCommitment, activationEpoch, false, bytes32(0)));
        datasetId = _datasets.length;
        _schedule.push(SafeCast.toUint48(activationEpoch), SafeCast.toUint208(datasetId));
        emit DatasetScheduled(datasetId, contentHash, recordCount, keyCommitment, activationEpoch);
    }

    function _dataset(uint256 datasetId) private view returns (Dataset storage) {
        if (datasetId == 0 || datasetId > _datasets.length) revert UnknownDataset(datasetId);
        return _datasets[datasetId - 1];
    }
}
