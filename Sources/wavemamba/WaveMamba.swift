import ArgumentParser

@main
struct WaveMamba: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wavemamba",
        abstract: "Model and generate raw audio waveforms with selective state-space models.")
}
