/// Downstream tasks and the IPT head/tail/query each one uses (AdaptIR's TASK_MAP, spec 1.1), with its scale.
public enum RestorationTask: String, Sendable, CaseIterable, Codable {
    case sr2 = "sr_2", sr3 = "sr_3", sr4 = "sr_4"
    case lr4Noise30 = "lr4_noise30", lr4JPEG30 = "lr4_jpeg30"
    case derainL = "derain_l", derainH = "derain_h"
    case denoise30 = "denoise_30", denoise50 = "denoise_50"
    case lowLight = "low_light"

    /// Index of the pre-training task whose head, query and tail this task uses.
    public var iptTask: Int {
        switch self {
        case .sr2: return 0
        case .sr3: return 1
        case .sr4, .lr4Noise30, .lr4JPEG30: return 2
        case .derainL, .derainH: return 3
        case .denoise30: return 4
        case .denoise50, .lowLight: return 5
        }
    }

    /// Output / input size ratio.
    public var scale: Int { Preset.ipt.scales[iptTask] }

    /// PSNR/SSIM protocol of spec 5.1: Y channel or RGB, and the border cropped.
    public var metricOnY: Bool {
        switch self {
        case .denoise30, .denoise50, .lowLight: return false
        default: return true
        }
    }

    public var metricBorder: Int {
        switch self {
        case .sr2, .sr3, .sr4, .lr4Noise30, .lr4JPEG30: return scale
        default: return 0
        }
    }
}
