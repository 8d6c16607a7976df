/*
 * C++ allocations through operator new: new/delete, new[]/delete[] (with
 * and without an array cookie), over-aligned new, std::string beyond the
 * small-string buffer, std::map nodes, std::vector, and thrown exceptions.
 *
 * libstdc++ allocates on its own at start-up (its emergency exception pool)
 * and may do so the first time a feature is used; the program therefore
 * runs the workload once before counting anything, and the test compares
 * two runs whose only difference is REPS and THROWS.
 *
 * usage: containers REPS THROWS
 *   REPS rounds of the container workload; THROWS exceptions thrown and
 *   caught (each allocates one block whose size is libsupc++'s business,
 *   so they are counted apart, without bytes).
 */
#include "victim.h"

#include <map>
#include <new>
#include <string>
#include <vector>

namespace {

struct Counts {
  unsigned long long malloc_calls = 0, aligned_alloc_calls = 0, free_calls = 0, bytes = 0;
};

/* Non-trivial destructor: new[] stores the element count in a cookie of
 * sizeof(size_t) bytes in front of the elements. */
struct WithDestructor {
  long a, b, c;
  WithDestructor() : a(1), b(2), c(3) {}
  ~WithDestructor() { v_keep(this); }
};

struct alignas(64) OverAligned {
  char bytes[100];
};

using Map = std::map<int, std::string>;
/* libstdc++'s node for Map: what one insertion allocates besides the string. */
using MapNode = std::_Rb_tree_node<Map::value_type>;

constexpr int kMapNodes = 50;
constexpr std::size_t kMapString = 40;  /* longer than the 15-byte SSO buffer */
constexpr std::size_t kLongString = 100;

/* One round; adds what it allocated to `c` when `c` is not null. */
void workload(Counts *c) {
  Counts local;

  int *one = new int(42);  // malloc(4)
  v_keep(one);
  delete one;
  local.malloc_calls++, local.free_calls++, local.bytes += sizeof(int);

  int *ints = new int[100];  // malloc(400), no cookie
  v_keep(ints);
  delete[] ints;
  local.malloc_calls++, local.free_calls++, local.bytes += 100 * sizeof(int);

  WithDestructor *objs = new WithDestructor[10];  // malloc(10 * 24 + 8)
  v_keep(objs);
  delete[] objs;
  local.malloc_calls++, local.free_calls++, local.bytes += 10 * sizeof(WithDestructor) + sizeof(std::size_t);

  OverAligned *aligned = new OverAligned;  // aligned_alloc(64, 128)
  v_keep(aligned);
  if (reinterpret_cast<std::uintptr_t>(aligned) % 64) v_die("over-aligned new is not aligned");
  delete aligned;
  local.aligned_alloc_calls++, local.free_calls++, local.bytes += sizeof(OverAligned);

  {
    std::string s(kLongString, 'x');  // malloc(101)
    v_keep(&s[0]);
    std::string small("hi");  // in the object: no allocation
    v_keep(&small[0]);
  }
  local.malloc_calls++, local.free_calls++, local.bytes += kLongString + 1;

  {
    Map m;
    for (int k = 0; k < kMapNodes; k++) m.try_emplace(k, kMapString, 'y');  // node + string
    if (m.size() != kMapNodes) v_die("map size");
    m.clear();
  }
  local.malloc_calls += 2 * kMapNodes, local.free_calls += 2 * kMapNodes;
  local.bytes += kMapNodes * (sizeof(MapNode) + kMapString + 1);

  {
    std::vector<int> v;
    v.reserve(1000);  // malloc(4000)
    v.push_back(1);
    v_keep(v.data());
  }
  local.malloc_calls++, local.free_calls++, local.bytes += 1000 * sizeof(int);

  if (c) {
    c->malloc_calls += local.malloc_calls;
    c->aligned_alloc_calls += local.aligned_alloc_calls;
    c->free_calls += local.free_calls;
    c->bytes += local.bytes;
  }
}

int throw_and_catch(int i) {
  try {
    if (v_sink != reinterpret_cast<void *>(1)) throw i;
  } catch (int caught) {
    return caught;
  }
  return -1;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 3) v_die("usage: containers REPS THROWS");
  unsigned long reps = v_arg(argc, argv, 1, 0);
  unsigned long throws = v_arg(argc, argv, 2, 0);

  /* Warm-up, in every run: first-use allocations cancel out. */
  workload(nullptr);
  if (throw_and_catch(7) != 7) v_die("exception lost");

  Counts c;
  for (unsigned long r = 0; r < reps; r++) workload(&c);
  for (unsigned long t = 0; t < throws; t++)
    if (throw_and_catch(static_cast<int>(t)) != static_cast<int>(t)) v_die("exception lost");

  v_json_begin();
  v_json_u64("malloc", c.malloc_calls);
  v_json_u64("aligned_alloc", c.aligned_alloc_calls);
  v_json_u64("free", c.free_calls);
  v_json_u64("bytes_allocated", c.bytes);
  v_json_u64("throws", throws);
  v_json_u64("map_node_bytes", sizeof(MapNode));
  v_json_end();
  return 0;
}
