/// Aho–Corasick over bytes, ASCII case folded: one pass over the text reports every position
/// where any keyword ends, at a cost that does not grow with the number of keywords.
///
/// The automaton is compiled to a dense table over byte classes (each distinct folded keyword
/// byte is a class; every other byte shares class 0). A table entry holds the next state's row
/// offset (state × class count, so a step is two loads and an add, with no multiply on the
/// loop-carried path); bit 31 marks states that end at least one keyword.
///
/// A step depends on the previous one (the state), so one walk is bound by load latency, not by
/// throughput. `scan` therefore walks the four quarters of a long text at once, interleaved:
/// each walk but the first starts `maximumKeywordLength - 1` bytes before its quarter, so it
/// sees every keyword that ends in its quarter, and reports only those.
public struct KeywordAutomaton: Sendable {
    /// Keywords as given (lower-cased), indexed by the ids `scan` reports.
    public let keywords: [[UInt8]]
    private let classOf: [UInt8]
    private let classCount: Int
    private let table: [UInt32]
    /// The keyword ids that end in each state (its own and those of its suffix states):
    /// `outputIDs[outputStarts[state]..<outputStarts[state + 1]]`.
    private let outputIDs: [Int32]
    private let outputStarts: [Int32]
    private let maximumKeywordLength: Int

    private static let outputBit: UInt32 = 0x8000_0000
    /// Below this many bytes one walk is used (the overlaps would not pay off).
    private static let splitThreshold = 512

    /// Folds and de-duplicates the keywords of `entries` and groups, per keyword id, the owners
    /// that asked for it (a keyword shared by several detectors or rules is scanned for once).
    public static func grouping<Owner>(_ entries: [(keyword: String, owner: Owner)]) -> (automaton: KeywordAutomaton, owners: [[Owner]]) {
        var ids: [String: Int] = [:]
        var keywords: [String] = []
        var owners: [[Owner]] = []
        for (keyword, owner) in entries {
            let folded = keyword.lowercased()
            if let id = ids[folded] {
                owners[id].append(owner)
            } else {
                ids[folded] = keywords.count
                keywords.append(folded)
                owners.append([owner])
            }
        }
        return (KeywordAutomaton(keywords: keywords), owners)
    }

    public init(keywords words: [String]) {
        let keywords = words.map { Array($0.lowercased().utf8) }
        self.keywords = keywords

        var classOf = [UInt8](repeating: 0, count: 256)
        var nextClass: UInt8 = 1
        for word in keywords {
            for byte in word where classOf[Int(byte)] == 0 {
                classOf[Int(byte)] = nextClass
                nextClass += 1
            }
        }
        for byte in UInt8(ascii: "A")...UInt8(ascii: "Z") {
            classOf[Int(byte)] = classOf[Int(byte | 0x20)]
        }
        let classCount = Int(nextClass)

        // Trie.
        var children: [[Int32]] = [[Int32](repeating: -1, count: classCount)]
        var own: [[Int32]] = [[]]
        for (id, word) in keywords.enumerated() {
            var state = 0
            for byte in word {
                let c = Int(classOf[Int(byte)])
                if children[state][c] < 0 {
                    children[state][c] = Int32(children.count)
                    children.append([Int32](repeating: -1, count: classCount))
                    own.append([])
                }
                state = Int(children[state][c])
            }
            own[state].append(Int32(id))
        }

        // Breadth-first failure links, folded into a complete transition table.
        let stateCount = children.count
        precondition(stateCount * classCount < Int(Self.outputBit), "too many keyword states")
        var fail = [Int](repeating: 0, count: stateCount)
        var outputs = own
        var delta = [Int](repeating: 0, count: stateCount * classCount)
        var queue: [Int] = []
        for c in 0..<classCount {
            let child = Int(children[0][c])
            if child >= 0 {
                delta[c] = child
                fail[child] = 0
                queue.append(child)
            }
        }
        var head = 0
        while head < queue.count {
            let state = queue[head]
            head += 1
            outputs[state] += outputs[fail[state]].filter { !outputs[state].contains($0) }
            for c in 0..<classCount {
                let child = Int(children[state][c])
                if child >= 0 {
                    fail[child] = delta[fail[state] * classCount + c]
                    delta[state * classCount + c] = child
                    queue.append(child)
                } else {
                    delta[state * classCount + c] = delta[fail[state] * classCount + c]
                }
            }
        }
        self.table = delta.map { target in UInt32(target * classCount) | (outputs[target].isEmpty ? 0 : Self.outputBit) }
        var ids: [Int32] = []
        var starts: [Int32] = [0]
        for list in outputs {
            ids += list
            starts.append(Int32(ids.count))
        }
        self.outputIDs = ids
        self.outputStarts = starts
        self.classOf = classOf
        self.classCount = classCount
        self.maximumKeywordLength = keywords.map(\.count).max() ?? 1
    }

    /// Calls `hit(keywordID, endIndex)` (end exclusive) once for every keyword occurrence within
    /// `text[start...]`. The calls are not in order of position: callers must not depend on it.
    @inline(__always)
    public func scan(_ text: UnsafeBufferPointer<UInt8>, from start: Int = 0, _ hit: (Int, Int) -> Void) {
        guard start < text.count, let base = text.baseAddress else { return }
        self.table.withUnsafeBufferPointer { table in
            self.classOf.withUnsafeBufferPointer { classOf in
                self.outputIDs.withUnsafeBufferPointer { ids in
                    self.outputStarts.withUnsafeBufferPointer { starts in
                        let width = self.classCount
                        let tablePointer = table.baseAddress!, classPointer = classOf.baseAddress!
                        @inline(__always) func report(_ entry: UInt32, _ end: Int) {
                            let state = Int(entry & ~Self.outputBit) / width
                            for k in Int(starts[state])..<Int(starts[state &+ 1]) { hit(Int(ids[k]), end) }
                        }
                        @inline(__always) func finish(_ position: inout Int, _ row: inout Int, to limit: Int) {
                            while position < limit {
                                let entry = Self.walkOne(tablePointer, classPointer, base, &position, &row, limit: limit)
                                if entry & Self.outputBit != 0 { report(entry, position) }
                            }
                        }
                        let end = text.count
                        let overlap = self.maximumKeywordLength - 1
                        guard end - start >= max(Self.splitThreshold, 8 * self.maximumKeywordLength) else {
                            var position = start, row = 0
                            finish(&position, &row, to: end)
                            return
                        }
                        // Four walks, one per quarter. Walk k > 0 starts `overlap` bytes before its
                        // quarter (so it sees every keyword that ends in it) and reports only
                        // keywords that end inside its quarter.
                        let quarter = (end - start) / 4
                        let q1 = start + quarter, q2 = q1 + quarter, q3 = q2 + quarter
                        var p0 = start, p1 = q1 - overlap, p2 = q2 - overlap, p3 = q3 - overlap
                        var r0 = 0, r1 = 0, r2 = 0, r3 = 0
                        while p0 < q1 {
                            let (e0, e1, e2, e3) = Self.walkFour(tablePointer, classPointer, base, &p0, &p1, &p2, &p3, &r0, &r1, &r2, &r3, limit: q1)
                            if e0 & Self.outputBit != 0 { report(e0, p0) }
                            if e1 & Self.outputBit != 0, p1 > q1 { report(e1, p1) }
                            if e2 & Self.outputBit != 0, p2 > q2 { report(e2, p2) }
                            if e3 & Self.outputBit != 0, p3 > q3 { report(e3, p3) }
                        }
                        // Each of the other walks is `overlap` bytes short of its quarter's end
                        // (the last one also has the remainder of the division).
                        finish(&p1, &r1, to: q2)
                        finish(&p2, &r2, to: q3)
                        finish(&p3, &r3, to: end)
                    }
                }
            }
        }
    }

    /// Steps four walks at once until one of them reaches a state that ends a keyword (the
    /// entries are returned; those with the output bit report) or the first reaches `limit`.
    /// Kept out of line so that the loop holds its few variables in registers.
    @inline(never)
    private static func walkFour(
        _ table: UnsafePointer<UInt32>, _ classOf: UnsafePointer<UInt8>, _ text: UnsafePointer<UInt8>,
        _ p0: inout Int, _ p1: inout Int, _ p2: inout Int, _ p3: inout Int,
        _ r0: inout Int, _ r1: inout Int, _ r2: inout Int, _ r3: inout Int, limit: Int
    ) -> (UInt32, UInt32, UInt32, UInt32) {
        var i = p0, a = r0, b = r1, c = r2, d = r3
        let o1 = p1 - p0, o2 = p2 - p0, o3 = p3 - p0
        defer { p0 = i; p1 = i + o1; p2 = i + o2; p3 = i + o3; r0 = a; r1 = b; r2 = c; r3 = d }
        while i < limit {
            let e0 = table[a &+ Int(classOf[Int(text[i])])]
            let e1 = table[b &+ Int(classOf[Int(text[i &+ o1])])]
            let e2 = table[c &+ Int(classOf[Int(text[i &+ o2])])]
            let e3 = table[d &+ Int(classOf[Int(text[i &+ o3])])]
            i &+= 1
            a = Int(e0 & ~outputBit)
            b = Int(e1 & ~outputBit)
            c = Int(e2 & ~outputBit)
            d = Int(e3 & ~outputBit)
            if (e0 | e1 | e2 | e3) & outputBit != 0 { return (e0, e1, e2, e3) }
        }
        return (0, 0, 0, 0)
    }

    @inline(never)
    private static func walkOne(
        _ table: UnsafePointer<UInt32>, _ classOf: UnsafePointer<UInt8>, _ text: UnsafePointer<UInt8>,
        _ position: inout Int, _ row: inout Int, limit: Int
    ) -> UInt32 {
        var i = position, r = row
        defer { position = i; row = r }
        while i < limit {
            let entry = table[r &+ Int(classOf[Int(text[i])])]
            i &+= 1
            r = Int(entry & ~outputBit)
            if entry & outputBit != 0 { return entry }
        }
        return 0
    }
}
