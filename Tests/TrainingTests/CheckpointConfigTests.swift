import Engine
import Foundation
import Models
import SafeTensors
import XCTest
@testable import Training

/// The model config and audio settings stored in checkpoints use the recipe's keys, and
/// checkpoints written with the older camelCase keys still load.
final class CheckpointConfigTests: XCTestCase {
    func tinyModel() -> SaShiMi {
        var c = SaShiMiConfig()
        c.dModel = 8; c.nLayers = 1; c.pool = [2, 2]; c.dState = 4; c.mambaExpand = 1; c.scanChunk = 16; c.mhaHeads = 2
        c.outer = .mamba; c.dropout = 0.25
        return SaShiMi(config: c, backend: CPUBackend(threads: 1), seed: 0)
    }

    func jsonKeys(_ text: String) throws -> Set<String> {
        Set(try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]).keys)
    }

    func testNewCheckpointConfigKeysAreTheRecipeKeys() throws {
        let model = tinyModel()
        var audio = AudioSettings()
        audio.sampleRate = 8000; audio.clipLength = 64
        let url = Fixture.scratch(self).appendingPathComponent("new.safetensors")
        try ModelCheckpoint.save(model, audio: audio, to: url)
        let file = try SafeTensorsFile(contentsOf: url)
        let modelKeys = Set(RecipeSchema.fields(in: .model).map(\.key))
        // `classes` follows from the quantisation; it is the one config key that is not a recipe key.
        XCTAssertEqual(try jsonKeys(try XCTUnwrap(file.metadata[Checkpoint.configKey])), modelKeys.union(["classes"]))
        let audioKeys = try jsonKeys(try XCTUnwrap(file.metadata[ModelCheckpoint.audioKey]))
        XCTAssertTrue(audioKeys.isSubset(of: Set(RecipeSchema.fields(in: .data).map(\.key))), "\(audioKeys)")
        XCTAssertEqual(audioKeys, ["sample_rate", "quantization", "clip_length", "normalization"])
        let (config, readAudio, _) = try ModelCheckpoint.header(url)
        XCTAssertEqual(config, model.config)
        XCTAssertEqual(readAudio, audio)
    }

    func testOldCamelCaseCheckpointLoadsToTheSameConfig() throws {
        let model = tinyModel()
        var audio = AudioSettings()
        audio.sampleRate = 8000; audio.clipLength = 64; audio.quantization = "linear"; audio.normalization = "none"
        let c = model.config
        // As ModelCheckpoint wrote them before the keys matched the recipe's.
        let oldConfig = """
        {"backbone":"\(c.backbone.rawValue)","center":"\(c.center.rawValue)","classes":\(c.classes),"dConv":\(c.dConv),"dModel":\(c.dModel),\
        "dState":\(c.dState),"dropout":\(c.dropout),"expand":\(c.expand),"ff":\(c.ff),"mambaExpand":\(c.mambaExpand),"mhaHeads":\(c.mhaHeads),\
        "nLayers":\(c.nLayers),"outer":"\(c.outer.rawValue)","pool":[2,2],"s4dState":\(c.s4dState),"scanChunk":\(c.scanChunk)}
        """
        let oldAudio = #"{"clipLength":64,"normalization":"none","quantization":"linear","sampleRate":8000}"#
        let url = Fixture.scratch(self).appendingPathComponent("old.safetensors")
        try Checkpoint.saveWeights(model.store, to: url, metadata: [Checkpoint.configKey: oldConfig, ModelCheckpoint.audioKey: oldAudio])
        let (config, readAudio, _) = try ModelCheckpoint.header(url)
        XCTAssertEqual(config, c)
        XCTAssertEqual(readAudio, audio)
        let loaded = try ModelCheckpoint.load(url, backend: CPUBackend(threads: 1))
        XCTAssertEqual(loaded.model.config, c)
        // Checkpoints from before a key existed: its default.
        let older = try JSONDecoder().decode(SaShiMiConfig.self, from: Data(#"{"dModel":16}"#.utf8))
        var expected = SaShiMiConfig()
        expected.dModel = 16
        XCTAssertEqual(older, expected)
    }
}
