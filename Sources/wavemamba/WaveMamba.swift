import ArgumentParser

@main
struct WaveMamba: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wavemamba",
        abstract: "Model and generate raw audio waveforms with selective state-space models (Mamba, SaShiMi).",
        discussion: """
        Train a SaShiMi U-Net of Mamba blocks on a folder of audio, generate clips from a checkpoint,
        and score them against a reference set. Run `wavemamba help <command>` for each command.
        """,
        subcommands: [DemoCommand.self, TrainCommand.self, GenerateCommand.self, NLLCommand.self, EvaluateCommand.self, ExperimentCommand.self, ClassifierCommand.self, InfoCommand.self, CheckpointCommand.self, BenchCommand.self, SelfTestCommand.self, CUDAKernelsCommand.self])
}
