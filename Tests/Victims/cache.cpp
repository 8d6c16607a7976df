/*
 * A C++ method that allocates with new and never frees: the report must
 * name it `Cache::insert(std::__cxx11::basic_string<...> const&)`, or
 * `_ZN5Cache6insert...` with --no-demangle.
 *
 * usage: cache N     inserts N entries of sizeof(Entry) = 72 bytes, all
 *                    leaked (the key is short: std::string keeps it inline)
 */
#include <cstdlib>
#include <cstring>
#include <string>

struct Entry {
  char key[64];
  Entry *next;
};

class Cache {
 public:
  void insert(std::string const &key);
  Entry *head = nullptr;
};

__attribute__((noinline)) void Cache::insert(std::string const &key) {
  Entry *e = new Entry; /* @site:Cache::insert.new */
  std::strncpy(e->key, key.c_str(), sizeof e->key - 1);
  e->key[sizeof e->key - 1] = 0;
  e->next = head;
  head = e;
}

static_assert(sizeof(Entry) == 72, "the test expects 72-byte entries");

/* Kept alive to the end; its destructor frees nothing. */
static Cache cache;
static Entry *volatile cache_sink;

int main(int argc, char **argv) {
  unsigned long n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10;
  std::string key("k");
  for (unsigned long i = 0; i < n; i++) cache.insert(key); /* @site:main.insert */
  cache_sink = cache.head;
  return 0;
}
