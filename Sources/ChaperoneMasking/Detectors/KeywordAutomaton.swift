/// Aho–Corasick over bytes, ASCII case folded: one pass over the text reports every position
/// where any keyword ends, at a cost that does not grow with the number of keywords.
///
/// The automaton is compiled to a dense table over byte classes (each distinct folded keyword
/// byte is a class; every other byte shares class 0), so a step is two loads. Bit 15 of a
/// table entry marks states that end at least one keyword.
public struct KeywordAutomaton: Sendable {
    /// Keywords as given (lower-cased), indexed by the ids `scan` reports.
    public let keywords: [[UInt8]]
    private let classOf: [UInt8]
    private let classCount: Int
    private let table: [UInt16]
    /// For each state, the keyword ids that end there (its own and those of its suffix states).
    private let outputs: [[Int32]]

    private static let outputBit: UInt16 = 0x8000

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
        precondition(stateCount < Int(Self.outputBit), "too many keyword states")
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
        self.table = delta.map { target in UInt16(target) | (outputs[target].isEmpty ? 0 : Self.outputBit) }
        self.outputs = outputs
        self.classOf = classOf
        self.classCount = classCount
    }

    /// Calls `hit(keywordID, endIndex)` (end exclusive) for every keyword occurrence, in order of
    /// the end position.
    @inline(__always)
    public func scan(_ text: UnsafeBufferPointer<UInt8>, from start: Int = 0, _ hit: (Int, Int) -> Void) {
        guard start < text.count else { return }
        self.table.withUnsafeBufferPointer { table in
            self.classOf.withUnsafeBufferPointer { classOf in
                let width = self.classCount
                var state = 0
                var index = start
                let end = text.count
                while index < end {
                    let entry = table[state &* width &+ Int(classOf[Int(text[index])])]
                    index &+= 1
                    if entry & Self.outputBit != 0 {
                        state = Int(entry & ~Self.outputBit)
                        for id in self.outputs[state] { hit(Int(id), index) }
                    } else {
                        state = Int(entry)
                    }
                }
            }
        }
    }
}
