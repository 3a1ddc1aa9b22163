/// torch.optim.lr_scheduler.MultiStepLR over optimisation steps: lr = base * gamma^(number of milestones <= step).
/// The paper's recipe (spec 4.1) halves the rate at 250/400/450/475 of 500 epochs, i.e. at 50/80/90/95 % of the run.
public struct MultiStepLR: Sendable, Equatable {
    public let base: Float
    public let milestones: [Int]
    public let gamma: Float

    public init(base: Float, milestones: [Int], gamma: Float = 0.5) {
        self.base = base
        self.milestones = milestones.sorted()
        self.gamma = gamma
    }

    /// The recipe's milestones as fractions of `totalSteps`.
    public init(base: Float, totalSteps: Int, fractions: [Double] = [0.5, 0.8, 0.9, 0.95], gamma: Float = 0.5) {
        self.init(base: base, milestones: fractions.map { Int(($0 * Double(totalSteps)).rounded(.down)) }, gamma: gamma)
    }

    /// Learning rate of (0-based) step `step`.
    public func rate(at step: Int) -> Float {
        var lr = base
        for m in milestones where step >= m { lr *= gamma }
        return lr
    }
}
