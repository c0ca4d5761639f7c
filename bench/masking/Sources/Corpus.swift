import Foundation

/// The throughput corpus: what an agent's LLM traffic carries — source code, prose, JSON and
/// logs — with labelled texts from Tests/Fixtures/masking/labelled.jsonl sprinkled in (the
/// secrets and the hard negatives around them). Deterministic for a given seed and labelled file.
struct CorpusBuilder {
    var rng: SplitMix64
    let positives: [String]
    let negatives: [String]
    /// Texts inserted so far, by kind (for the report).
    var insertedPositives = 0
    var insertedNegatives = 0

    init(seed: UInt64, records: [LabelledRecord]) {
        self.rng = SplitMix64(seed: seed)
        self.positives = records.filter(\.positive).map(\.text)
        self.negatives = records.filter { !$0.positive }.map(\.text)
    }

    /// About `size` bytes of mixed text; the caller cuts it to the exact size.
    /// On average one labelled secret-bearing text per ~16 KB and one hard negative per ~4 KB.
    mutating func build(size: Int) -> String {
        var out = ""
        out.reserveCapacity(size + 8192)
        var nextPositive = 1500 // the smallest file gets one too
        var nextNegative = 600
        while out.utf8.count < size {
            let length = out.utf8.count
            if length >= nextPositive, !self.positives.isEmpty {
                out += self.pick(self.positives) + "\n"
                self.insertedPositives += 1
                nextPositive = length + Int.random(in: 8_000...24_000, using: &self.rng)
                continue
            }
            if length >= nextNegative, !self.negatives.isEmpty {
                out += self.pick(self.negatives) + "\n"
                self.insertedNegatives += 1
                nextNegative = length + Int.random(in: 2_000...6_000, using: &self.rng)
                continue
            }
            switch Int.random(in: 0..<100, using: &self.rng) {
            case 0..<35: out += self.code()
            case 35..<60: out += self.prose()
            case 60..<80: out += self.json()
            default: out += self.logs()
            }
        }
        return out
    }

    /// A prefix of `text` of exactly `size` UTF-8 bytes, ending with a line break: cut at the
    /// last line break that fits, then topped up with a line of words.
    mutating func cut(_ text: String, to size: Int) -> String {
        let bytes = Array(text.utf8)
        precondition(bytes.count >= size)
        var end = size - 1
        while end > 0, bytes[end - 1] != UInt8(ascii: "\n") { end -= 1 }
        var result = Array(bytes[..<end])
        var line: [UInt8] = []
        while line.count < size - end - 1 { line += Array((self.pick(Self.words) + " ").utf8) }
        result += line.prefix(size - end - 1)
        result.append(UInt8(ascii: "\n"))
        return String(decoding: result, as: UTF8.self)
    }

    // MARK: pieces

    private mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self.rng)] }
    private mutating func number(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self.rng) }
    private mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self.rng) < p }

    private mutating func hex(_ count: Int) -> String {
        let digits = Array("0123456789abcdef")
        return String((0..<count).map { _ in digits[Int.random(in: 0..<16, using: &self.rng)] })
    }

    private mutating func uuid() -> String {
        "\(self.hex(8))-\(self.hex(4))-4\(self.hex(3))-\(self.pick(["8", "9", "a", "b"]))\(self.hex(3))-\(self.hex(12))"
    }

    private mutating func identifier(snake: Bool) -> String {
        let parts = (0..<self.number(1...3)).map { _ in self.pick(Self.identifierWords) }
        if snake { return parts.joined(separator: "_") }
        return parts.enumerated().map { $0.offset == 0 ? $0.element : $0.element.prefix(1).uppercased() + $0.element.dropFirst() }.joined()
    }

    private mutating func sentence() -> String {
        var words: [String] = []
        for _ in 0..<self.number(6...18) {
            words.append(self.chance(0.2) ? self.pick(Self.techWords) : self.pick(Self.words))
        }
        if self.chance(0.15) { words.insert("`\(self.identifier(snake: self.chance(0.5)))`", at: self.number(0...words.count)) }
        let text = words.joined(separator: " ")
        return text.prefix(1).uppercased() + text.dropFirst() + self.pick([".", ".", ".", "?", ":", "!"])
    }

    mutating func prose() -> String {
        if self.chance(0.04) { return self.pick(Self.foreignProse) + "\n\n" }
        var paragraph = (0..<self.number(2...6)).map { _ in self.sentence() }.joined(separator: " ")
        if self.chance(0.25) { paragraph = "- " + paragraph }
        if self.chance(0.1) { paragraph = "## " + self.sentence().dropLast() + "\n\n" + paragraph }
        return paragraph + "\n\n"
    }

    mutating func code() -> String {
        let a = self.identifier(snake: true), b = self.identifier(snake: true), c = self.identifier(snake: true)
        let fn = self.identifier(snake: true), type = self.pick(Self.identifierWords).capitalized + self.pick(Self.identifierWords).capitalized
        let camel = self.identifier(snake: false), camel2 = self.identifier(snake: false)
        let n = self.number(0...4096)
        switch self.number(0...5) {
        case 0:
            return """
            def \(fn)(\(a), \(b)=None, *, timeout=\(self.number(1...120))):
                \"\"\"\(self.sentence())\"\"\"
                \(c) = \(a).get("\(self.identifier(snake: true))", \(n))
                if \(c) is None:
                    raise ValueError(f"\(self.sentence().dropLast()): {\(a)!r}")
                for i, item in enumerate(\(b) or []):
                    \(c) += item.\(self.identifier(snake: true)) * \(self.number(2...64))
                logger.debug("\(fn) done in %.2fs", time.monotonic() - started)
                return \(c)


            """
        case 1:
            return """
            func \(camel)(_ \(camel2): [\(type)], limit: Int = \(n)) throws -> [\(type)] {
                // \(self.sentence())
                var result: [\(type)] = []
                result.reserveCapacity(\(camel2).count)
                for element in \(camel2) where element.\(self.identifier(snake: false)) < limit {
                    guard let value = try? element.\(self.identifier(snake: false))() else { continue }
                    result.append(value)
                }
                return result.sorted { $0.\(self.identifier(snake: false)) < $1.\(self.identifier(snake: false)) }
            }


            """
        case 2:
            return """
            // \(type)\(self.pick(["Handler", "Store", "Client", "Service"])) \(self.sentence().lowercased())
            func (s *\(type)) \(camel.prefix(1).uppercased() + camel.dropFirst())(ctx context.Context, req *\(type)Request) (*\(type)Response, error) {
            \tif req == nil {
            \t\treturn nil, fmt.Errorf("\(fn): %w", ErrInvalidArgument)
            \t}
            \trows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at FROM \(a) WHERE \(b) = $1 LIMIT \(self.number(1...500))`, req.ID)
            \tif err != nil {
            \t\treturn nil, err
            \t}
            \tdefer rows.Close()
            \treturn &\(type)Response{Count: \(n)}, nil
            }


            """
        case 3:
            return """
            export async function \(camel)(\(camel2), options = {}) {
              const { retries = \(self.number(1...5)), signal } = options;
              const res = await fetch(`${BASE_URL}/api/v\(self.number(1...3))/\(a.replacingOccurrences(of: "_", with: "-"))/${\(camel2).id}`, { signal });
              if (!res.ok) throw new Error(`\(self.sentence().dropLast()) (${res.status})`);
              const body = await res.json();
              return body.items.filter((x) => x.\(self.identifier(snake: false)) !== undefined).map((x) => ({ ...x, seen: Date.now() }));
            }


            """
        case 4:
            // Configuration that names secrets without holding them, as real repositories do.
            let service = self.pick(Self.identifierWords)
            return """
            \(service):
              image: registry.internal/\(service):\(self.number(1...9)).\(self.number(0...30)).\(self.number(0...9))
              replicas: \(self.number(1...6))
              env:
                - name: \(service.uppercased())_TOKEN
                  valueFrom:
                    secretKeyRef: { name: \(service)-credentials, key: token }
                - name: MAX_TOKENS
                  value: "\(self.number(256...8192))"
                - name: LOG_LEVEL
                  value: \(self.pick(["debug", "info", "warning"]))
              resources: { limits: { cpu: \(self.number(100...2000))m, memory: \(self.number(64...2048))Mi } }


            """
        default:
            return """
            #include <stdint.h>
            /* \(self.sentence()) */
            static int \(fn)(const uint8_t *buf, size_t len, struct \(a) *out) {
                uint32_t crc = 0x\(self.hex(8));
                for (size_t i = 0; i < len; i++) {
                    crc = table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
                }
                out->\(b) = crc;
                return len > \(n) ? -1 : 0;
            }


            """
        }
    }

    mutating func json() -> String {
        let model = self.pick(["gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "o3-mini"])
        switch self.number(0...2) {
        case 0:
            // A chat request carrying a file, the way coding agents send them.
            let file = self.code().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
            return """
            {"model":"\(model)","max_tokens":\(self.number(256...4096)),"stream":true,"messages":[{"role":"system","content":"\(self.sentence())"},{"role":"user","content":"\(self.sentence()) Here is the file:\\n\\n\(file)"}]}

            """
        case 1:
            let content = self.sentence() + " " + self.sentence()
            return """
            {"id":"chatcmpl-\(self.hex(24))","object":"chat.completion","created":\(self.number(1_700_000_000...1_800_000_000)),"model":"\(model)","choices":[{"index":0,"message":{"role":"assistant","content":"\(content)"},"finish_reason":"stop"}],"usage":{"prompt_tokens":\(self.number(10...9000)),"completion_tokens":\(self.number(1...2000)),"total_tokens":\(self.number(10...11000))}}

            """
        default:
            return """
            {
              "request_id": "\(self.uuid())",
              "user": { "id": \(self.number(1...999_999)), "name": "\(self.pick(Self.names))", "email": "\(self.pick(Self.names).lowercased())@\(self.pick(["example.com", "corp.internal", "mail.test"]))" },
              "commit": "\(self.hex(40))",
              "items": [
                { "sku": "\(self.identifier(snake: true))-\(self.number(100...999))", "qty": \(self.number(1...20)), "price": \(self.number(1...500)).\(self.number(10...99)) },
                { "sku": "\(self.identifier(snake: true))-\(self.number(100...999))", "qty": \(self.number(1...20)), "price": \(self.number(1...500)).\(self.number(10...99)) }
              ],
              "token_count": \(self.number(1...4096)),
              "created_at": "2026-\(self.number(10...12))-\(self.number(10...28))T\(self.number(10...23)):\(self.number(10...59)):\(self.number(10...59))Z"
            }

            """
        }
    }

    mutating func logs() -> String {
        var lines: [String] = []
        for _ in 0..<self.number(3...12) {
            let ts = "2026-11-\(self.number(10...28))T\(self.number(10...23)):\(self.number(10...59)):\(self.number(10...59)).\(self.number(100...999))Z"
            switch self.number(0...4) {
            case 0:
                lines.append("10.\(self.number(0...255)).\(self.number(0...255)).\(self.number(1...254)) - - [22/Nov/2026:0\(self.number(0...9)):\(self.number(10...59)):\(self.number(10...59)) +0000] \"\(self.pick(["GET", "POST", "PUT", "DELETE"])) /api/v\(self.number(1...3))/\(self.pick(Self.identifierWords))/\(self.number(1...99999))?page=\(self.number(1...40)) HTTP/1.1\" \(self.pick([200, 200, 200, 201, 204, 301, 404, 500])) \(self.number(0...90000)) \"-\" \"\(self.pick(Self.userAgents))\" \(self.number(0...2)).\(self.number(100...999))")
            case 1:
                lines.append("\(ts) \(self.pick(["INFO ", "DEBUG", "WARN ", "ERROR"])) [\(self.pick(["worker", "http", "scheduler", "db"]))-\(self.number(0...15))] request_id=\(self.uuid()) method=POST path=/v1/chat/completions status=\(self.pick([200, 200, 429, 500])) duration_ms=\(self.number(1...9000)) prompt_tokens=\(self.number(1...9000)) user=\(self.pick(Self.names).lowercased())")
            case 2:
                lines.append("I1122 0\(self.number(0...9)):\(self.number(10...59)):\(self.number(10...59)).\(self.number(100_000...999_999))       1 \(self.pick(["controller", "reconciler", "informer"])).go:\(self.number(10...900))] \(self.sentence())")
            case 3:
                lines.append("\(ts) level=\(self.pick(["info", "warn", "error"])) msg=\"\(self.sentence().dropLast())\" component=\(self.pick(Self.identifierWords)) trace_id=\(self.hex(32)) span_id=\(self.hex(16))")
            default:
                lines.append("  File \"/app/\(self.pick(Self.identifierWords))/\(self.identifier(snake: true)).py\", line \(self.number(1...900)), in \(self.identifier(snake: true))")
                lines.append("    \(self.identifier(snake: true)) = \(self.identifier(snake: true))(\(self.identifier(snake: true)), timeout=\(self.number(1...60)))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: word lists

    static let words = """
    the of and to in is it that for on with as this be are was by at from or an have not can will \
    but all which their if one when there so what about more would up out them some could into time has \
    only other new then also its after use two how our first well way even because any these give day \
    most us through call back over where same should while each under last might never before great \
    make see work long find here thing still need between change run build check value return number \
    result again place open point write small large early group problem fact right question order
    """.split(separator: " ").map(String.init)

    static let techWords = """
    server request response cache handler deploy cluster pod container image build pipeline branch commit \
    merge rebase test fixture mock timeout retry latency throughput queue worker thread async await \
    function method struct class module package import export config token tokens tokenizer secret \
    password key keys credential session cookie header bearer basic auth oauth scope endpoint proxy \
    upstream downstream stream chunk buffer parser schema migration index query database table column
    """.split(separator: " ").map(String.init)

    static let identifierWords = """
    user account order item cart price total count index buffer cache client server request response \
    handler config options settings session token page limit offset cursor batch event message queue \
    worker job task result error status state value name path file line column node edge graph tree
    """.split(separator: " ").map(String.init)

    static let names = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter"]

    static let userAgents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1", "OpenAI/Python 1.54.0", "kube-probe/1.31",
    ]

    static let foreignProse = [
        "Übrigens: Die Konfiguration wird beim Start geladen, und Änderungen werden erst nach einem Neustart wirksam.",
        "Remarque : le jeton d’accès expire après une heure ; il faut le renouveler côté serveur.",
        "このサービスは起動時に設定を読み込みます。変更を反映するには再起動が必要です。",
        "Сервис читает конфигурацию при запуске; изменения вступают в силу после перезапуска.",
        "El proceso tarda unos segundos — después, la caché está lista y las peticiones son más rápidas. 🚀",
    ]
}
