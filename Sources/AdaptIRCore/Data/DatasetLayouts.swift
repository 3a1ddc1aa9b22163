import Foundation

/// One training/test item found on disk: a clean (GT) image and, for paired data, its degraded (LQ) partner.
public struct ImagePair: Sendable, Equatable {
    /// Path of the GT image relative to the input folder (recorded in the patch file's `sources`).
    public let name: String
    /// Full path of the GT image.
    public let gt: String
    /// Full path of the LQ image (official bicubic LR, rainy image, low-light input), or nil for synthetic tasks.
    public let lq: String?
}

/// The on-disk layouts of the standard restoration sets (see datasets/README.md), and a plain folder.
public enum DatasetLayout: String, CaseIterable, Sendable {
    case auto, folder
    case div2k, flickr2k, bsd400, wed
    case set5, set14, b100, urban100, manga109, cbsd68
    case rain100l, rain100h, raintrainl, raintrainh
    case lol

    /// Image file extensions read by `readImage`.
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "bmp"]

    /// Finds the images of the set at `input` (sorted by relative name).
    ///
    /// - `folder`, `bsd400`, `wed`, `cbsd68`: every image file directly in `input` (CBSD68: `input/original_png` when
    ///   present). With `inputLQ`, each GT `stem.ext` pairs with `stem.png`, `stemx{s}.png` or `stem_LRBI_x{s}.png`.
    /// - `div2k`, `flickr2k`: `input` is the HR folder itself or a root holding `DIV2K_train_HR` / `Flickr2K_HR`;
    ///   LQ `…_LR_bicubic/X{s}/{stem}x{s}.png` (`inputLQ`, or found under the root when `wantLQ`).
    /// - `set5`, `set14`, `b100`, `urban100`, `manga109`: `input/HR` and `input/LR_bicubic/X{s}/{stem}x{s}.png`
    ///   (Manga109 `{stem}_LRBI_x{s}.png`), LQ used when `wantLQ`.
    /// - `rain100l/h`, `raintrainl/h`: `norain-N.png` GT with `rain-N.png` either beside it or in `rainy/`.
    /// - `lol`: `input/{input,target}` or `input/{low,high}` (also under `Train/`, `our485/`), same file names.
    /// Errors (`DataError` naming the file or folder): no images, an unpaired file in a paired set, a missing folder.
    public func find(input: String, inputLQ: String? = nil, scale: Int, wantLQ: Bool) throws -> [ImagePair] {
        let layout = self == .auto ? Self.detect(input) : self
        switch layout {
        case .auto, .folder, .bsd400, .wed:
            return try Self.plain(input, lq: inputLQ, scale: scale)
        case .cbsd68:
            let sub = (input as NSString).appendingPathComponent("original_png")
            return try Self.plain(Self.isDir(sub) ? sub : input, lq: inputLQ, scale: scale, root: input)
        case .div2k, .flickr2k:
            let hrNames = layout == .div2k ? ["DIV2K_train_HR", "DIV2K_valid_HR"] : ["Flickr2K_HR"]
            let lrNames = layout == .div2k ? ["DIV2K_train_LR_bicubic", "DIV2K_valid_LR_bicubic"] : ["Flickr2K_LR_bicubic"]
            var hr = input, lq = inputLQ
            for (h, l) in zip(hrNames, lrNames) where Self.isDir((input as NSString).appendingPathComponent(h)) {
                hr = (input as NSString).appendingPathComponent(h)
                let x = (input as NSString).appendingPathComponent("\(l)/X\(scale)")
                if lq == nil && wantLQ && Self.isDir(x) { lq = x }
                break
            }
            return try Self.plain(hr, lq: lq, scale: scale, root: input)
        case .set5, .set14, .b100, .urban100, .manga109:
            let hrSub = (input as NSString).appendingPathComponent("HR")
            let hr = Self.isDir(hrSub) ? hrSub : input
            var lq = inputLQ
            let x = (input as NSString).appendingPathComponent("LR_bicubic/X\(scale)")
            if lq == nil && wantLQ && Self.isDir(x) { lq = x }
            return try Self.plain(hr, lq: lq, scale: scale, root: input)
        case .rain100l, .rain100h, .raintrainl, .raintrainh:
            return try Self.rain(input)
        case .lol:
            return try Self.lol(input)
        }
    }

    /// Guesses the layout of `input`: rain pairs, LOL folders, a benchmark `HR/` folder, DIV2K/Flickr2K roots,
    /// else a plain folder.
    public static func detect(_ input: String) -> DatasetLayout {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: input)) ?? []
        let set = Set(names)
        if set.contains("rainy") { return .rain100l }
        if names.contains(where: { $0.hasPrefix("norain-") }) { return .raintrainl }
        if (set.contains("input") && set.contains("target")) || (set.contains("low") && set.contains("high"))
            || set.contains("our485") || set.contains("Train") && isDir((input as NSString).appendingPathComponent("Train/input")) {
            return .lol
        }
        if set.contains("DIV2K_train_HR") || set.contains("DIV2K_valid_HR") { return .div2k }
        if set.contains("Flickr2K_HR") { return .flickr2k }
        if set.contains("HR") { return .set5 }
        if set.contains("original_png") { return .cbsd68 }
        return .folder
    }

    static func isDir(_ p: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &d) && d.boolValue
    }

    static func isImage(_ name: String) -> Bool {
        !name.hasPrefix(".") && imageExtensions.contains((name as NSString).pathExtension.lowercased())
    }

    /// Image files directly in `dir`, sorted by name (byte order); a missing folder or no images is an error.
    static func images(in dir: String) throws -> [String] {
        guard isDir(dir) else { throw DataError(file: dir, message: "no such folder") }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter(isImage)
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func stem(_ name: String) -> String { (name as NSString).deletingPathExtension }

    /// `root`-relative name of `dir/file`.
    static func relative(_ dir: String, _ file: String, root: String) -> String {
        let full = (dir as NSString).appendingPathComponent(file)
        let r = (root as NSString).standardizingPath, f = (full as NSString).standardizingPath
        return f.hasPrefix(r + "/") ? String(f.dropFirst(r.count + 1)) : file
    }

    /// A plain folder, optionally paired with an LQ folder by stem (`stem`, `stemx{s}`, `stem_LRBI_x{s}`).
    static func plain(_ dir: String, lq: String?, scale: Int, root: String? = nil) throws -> [ImagePair] {
        let files = try images(in: dir)
        guard !files.isEmpty else {
            throw DataError(file: dir, message: "no images (\(imageExtensions.sorted().joined(separator: ", "))) in this folder")
        }
        let base = root ?? dir
        guard let lq else {
            return files.map { ImagePair(name: relative(dir, $0, root: base), gt: (dir as NSString).appendingPathComponent($0), lq: nil) }
        }
        let lqFiles = try images(in: lq)
        var byStem: [String: String] = [:]
        for f in lqFiles { byStem[stem(f)] = f }
        var used = Set<String>()
        var out: [ImagePair] = []
        for f in files {
            let s = stem(f)
            guard let m = [s, "\(s)x\(scale)", "\(s)_LRBI_x\(scale)"].lazy.compactMap({ byStem[$0] }).first else {
                throw DataError(file: (dir as NSString).appendingPathComponent(f),
                                message: "unpaired: no LQ partner (\(s).png, \(s)x\(scale).png or \(s)_LRBI_x\(scale).png) in \(lq)")
            }
            used.insert(m)
            out.append(ImagePair(name: relative(dir, f, root: base), gt: (dir as NSString).appendingPathComponent(f),
                                 lq: (lq as NSString).appendingPathComponent(m)))
        }
        if let extra = lqFiles.first(where: { !used.contains($0) }) {
            throw DataError(file: (lq as NSString).appendingPathComponent(extra), message: "unpaired: no GT partner in \(dir)")
        }
        return out
    }

    /// Rain sets: GT `norain-N.ext` in `dir`; rainy `rain-N.ext` beside it or in `dir/rainy`.
    static func rain(_ dir: String) throws -> [ImagePair] {
        let files = try images(in: dir)
        let rainyDir = (dir as NSString).appendingPathComponent("rainy")
        let rainy = isDir(rainyDir) ? try images(in: rainyDir).map { "rainy/" + $0 } : files.filter { $0.hasPrefix("rain-") }
        let gts = files.filter { $0.hasPrefix("norain-") }
        guard !gts.isEmpty else { throw DataError(file: dir, message: "no norain-*.png images in this folder") }
        if let stray = files.first(where: { !$0.hasPrefix("norain-") && !$0.hasPrefix("rain-") }) {
            throw DataError(file: (dir as NSString).appendingPathComponent(stray), message: "unpaired: neither rain-* nor norain-*")
        }
        var byStem: [String: String] = [:]
        for r in rainy { byStem[stem((r as NSString).lastPathComponent)] = r }
        var used = Set<String>()
        var out: [ImagePair] = []
        for g in gts {
            let key = "rain-" + stem(g).dropFirst("norain-".count)
            guard let r = byStem[key] else {
                throw DataError(file: (dir as NSString).appendingPathComponent(g), message: "unpaired: no \(key).* partner")
            }
            used.insert(r)
            out.append(ImagePair(name: g, gt: (dir as NSString).appendingPathComponent(g), lq: (dir as NSString).appendingPathComponent(r)))
        }
        if let extra = rainy.first(where: { !used.contains($0) }) {
            throw DataError(file: (dir as NSString).appendingPathComponent(extra), message: "unpaired: no norain-* partner")
        }
        return out
    }

    /// LOL: `input/` + `target/` or `low/` + `high/`, optionally under `Train/` or `our485/`, same file names.
    static func lol(_ root: String) throws -> [ImagePair] {
        var dir = root
        for sub in ["Train", "our485"] where isDir((root as NSString).appendingPathComponent(sub)) {
            dir = (root as NSString).appendingPathComponent(sub)
            break
        }
        let (lqName, gtName) = isDir((dir as NSString).appendingPathComponent("input")) ? ("input", "target") : ("low", "high")
        let lqDir = (dir as NSString).appendingPathComponent(lqName), gtDir = (dir as NSString).appendingPathComponent(gtName)
        let gts = try images(in: gtDir), lqs = try images(in: lqDir)
        guard !gts.isEmpty else { throw DataError(file: gtDir, message: "no images in this folder") }
        let lqSet = Set(lqs), gtSet = Set(gts)
        if let g = gts.first(where: { !lqSet.contains($0) }) {
            throw DataError(file: (gtDir as NSString).appendingPathComponent(g), message: "unpaired: no \(lqName)/\(g)")
        }
        if let l = lqs.first(where: { !gtSet.contains($0) }) {
            throw DataError(file: (lqDir as NSString).appendingPathComponent(l), message: "unpaired: no \(gtName)/\(l)")
        }
        return gts.map {
            ImagePair(name: relative(gtDir, $0, root: root), gt: (gtDir as NSString).appendingPathComponent($0),
                      lq: (lqDir as NSString).appendingPathComponent($0))
        }
    }
}
