/*
 * containers: the C++ workload of the memsift benchmark.
 *
 * Deterministic (the fixed-seed xorshift64* of bench_common.h) and
 * single-threaded churn of standard containers keyed by strings, the
 * allocation pattern of a typical C++ service:
 *   ~35% upsert   std::map<std::string, Record>: a new entry (the key, the
 *                 tree node, the record's name and its std::vector), or a
 *                 sample appended to an existing entry's vector (which grows
 *                 by doubling);
 *   ~20% erase    the map entry at or after a random key;
 *   ~25% assign   std::unordered_map<uint64_t, std::string>: a fresh text for a
 *                 random id (node, string, bucket-array rehashes), bounded by
 *                 erasing another id past a size limit;
 *   ~20% text     temporary std::string work: a line built by +=, split into a
 *                 std::vector<std::string>, joined back in reverse.
 * Keys and texts are longer than libstdc++'s 15-byte short-string buffer, so
 * they are on the heap. Each operation is its own non-inlined function.
 * At the end the containers are destroyed, and a known leak remains:
 * LEAK_BLOCKS blocks of LEAK_SIZE bytes from ::operator new at a fixed site.
 *
 * Counting: the program replaces the global operator new and operator
 * delete; each calls malloc, respectively free (of a non-null pointer),
 * exactly once, and counts it, so the JSON line has the same meaning as the
 * C workloads'. Only the workload's calls are counted: those of the main
 * thread while main() runs the workload, and not those made from inside
 * another operator new/delete (a tracer's preload library that is written
 * in C++, as heaptrack's is, calls the replaced operator new from its malloc
 * hook, and from its own threads):
 *   {"malloc":N,"calloc":0,"realloc":0,"free":N,"leaked_bytes":N,"leaked_allocations":N,"lang":"c++"}
 * ("malloc" = operator new calls, "free" = operator delete calls). It does not
 * count what the C++ runtime allocates by itself (libstdc++'s emergency
 * exception pool, one malloc at start-up, before main).
 *
 * Usage: containers [steps]   (default 800000 steps: about 3.5 million allocation calls)
 * Build: c++ -O2 -g -fno-omit-frame-pointer -o containers containers.cpp (bench_common.h beside it)
 */
#include "bench_common.h"

#include <map>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#define DEFAULT_STEPS 800000ull
#define MAP_KEYS 40000u   /* distinct keys of the ordered map */
#define IDS 50000u        /* distinct ids of the hash map */
#define IDS_LIVE 20000u   /* the hash map's size limit */

static counts_t g_counts;

/* ---- counting operator new / delete: one malloc / free each ---- */

/* The main thread, while main() runs the workload. */
static thread_local bool t_counting;
/* > 0 inside this file's operator new / delete. volatile: gcc would otherwise drop the change around
 * malloc, a builtin it assumes calls no user code (a tracer's malloc hook does). */
static thread_local volatile int t_depth;

void *operator new(std::size_t n) {
    bool count = t_counting && t_depth == 0;
    t_depth++;
    void *p = std::malloc(n ? n : 1);
    t_depth--;
    if (!p) throw std::bad_alloc();
    if (count) g_counts.malloc++;
    return p;
}

void operator delete(void *p) noexcept {
    if (!p) return;
    bool count = t_counting && t_depth == 0;
    t_depth++;
    std::free(p);
    t_depth--;
    if (count) g_counts.free++;
}

void operator delete(void *p, std::size_t) noexcept { operator delete(p); }

/* ---- the workload ---- */

namespace {

const char *const WORDS[16] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
                               "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa"};

struct Record {
    std::string name;
    std::vector<uint32_t> samples;
    uint64_t hits = 0;
};

class Churn {
  public:
    explicit Churn(uint64_t seed) : rng_{seed} {}

    int step() {
        uint32_t r = rng_below(&rng_, 100);
        if (r < 35) return upsert();
        if (r < 55) return erase();
        if (r < 80) return assign();
        return text();
    }

  private:
    rng_t rng_;
    std::map<std::string, Record> by_name_;
    std::unordered_map<uint64_t, std::string> by_id_;

    /* "session/<word>/<number>/<word>": 24..40 bytes. */
    NOINLINE std::string key(uint32_t k) {
        std::string s = "session/";
        s += WORDS[k % 16];
        s += '/';
        s += std::to_string(k);
        s += '/';
        s += WORDS[(k / 16) % 16];
        return s;
    }

    /* 16..143 bytes of words. */
    NOINLINE std::string words(uint32_t bytes) {
        std::string s;
        while (s.size() < bytes) {
            s += WORDS[rng_below(&rng_, 16)];
            s += ' ';
        }
        s.resize(bytes);
        return s;
    }

    NOINLINE int upsert() {
        std::string k = key(rng_below(&rng_, MAP_KEYS));
        auto it = by_name_.find(k);
        if (it == by_name_.end()) {
            Record rec;
            rec.name = words(16 + rng_below(&rng_, 48));
            rec.samples.reserve(1 + rng_below(&rng_, 4));
            rec.samples.push_back(rng_below(&rng_, 1000));
            by_name_.emplace(std::move(k), std::move(rec));
            return 1;
        }
        it->second.samples.push_back(rng_below(&rng_, 1000));
        it->second.hits++;
        return 2;
    }

    NOINLINE int erase() {
        auto it = by_name_.lower_bound(key(rng_below(&rng_, MAP_KEYS)));
        if (it == by_name_.end()) return 0;
        by_name_.erase(it);
        return 3;
    }

    NOINLINE int assign() {
        uint64_t id = rng_below(&rng_, IDS);
        by_id_[id] = words(16 + rng_below(&rng_, 128));
        if (by_id_.size() > IDS_LIVE) by_id_.erase(rng_below(&rng_, IDS));
        return 4;
    }

    NOINLINE int text() {
        std::string line;
        uint32_t n = 4 + rng_below(&rng_, 12);
        for (uint32_t i = 0; i < n; i++) {
            line += WORDS[rng_below(&rng_, 16)];
            line += std::to_string(rng_next(&rng_) % 100000);
            line += ' ';
        }
        std::vector<std::string> parts;
        size_t start = 0;
        for (size_t sp; (sp = line.find(' ', start)) != std::string::npos; start = sp + 1)
            parts.emplace_back(line, start, sp - start);
        std::string joined;
        for (auto p = parts.rbegin(); p != parts.rend(); ++p) {
            joined += *p;
            joined += ',';
        }
        return (int)(joined.size() & 7);
    }
};

void *g_leak[LEAK_BLOCKS];

/* The leak: a fixed site at a fixed depth. */
NOINLINE int leak_one(uint32_t i, uint32_t depth) {
    if (depth) return leak_one(i, depth - 1) + 1;
    g_leak[i] = ::operator new(LEAK_SIZE);
    static_cast<volatile unsigned char *>(g_leak[i])[0] = (unsigned char)i;
    return 0;
}

int usage() {
    write_text(2, "usage: containers [steps]\n");
    return 64;
}

}  // namespace

int main(int argc, char **argv) {
    uint64_t steps = DEFAULT_STEPS;
    if (argc > 2) return usage();
    if (argc > 1 && (steps = parse_steps(argv[1])) == 0) return usage();

    volatile int sink = 0;
    t_counting = true;
    {
        Churn churn(RNG_SEED);
        for (uint64_t i = 0; i < steps; i++) sink += churn.step();
    }
    for (uint32_t i = 0; i < LEAK_BLOCKS; i++) sink += leak_one(i, 3);
    t_counting = false;
    (void)sink;

    print_counts(&g_counts, (uint64_t)LEAK_BLOCKS * LEAK_SIZE, LEAK_BLOCKS, ",\"lang\":\"c++\"");
    return 0;
}
