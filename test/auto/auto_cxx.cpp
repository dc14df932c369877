// SPDX-License-Identifier: MIT
// A C++ library shaped like a logging sink: a heap object with a std::mutex
// member at an offset, and a std::shared_mutex, each kept busy by a worker.
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <atomic>

namespace {
struct Sink {
    char name[40] = "sink";
    long lines = 0;
    std::mutex m; // at an offset inside a heap object: no symbol names it
    std::shared_mutex rw;
};
Sink *sink;
std::atomic<int> busy{0};
} // namespace

extern "C" void autocxx_start(int shared, int worker_reads, long hold_ms)
{
    sink = new Sink;
    std::thread([=] {
        for (;;) {
            if (!shared) {
                std::lock_guard<std::mutex> g(sink->m);
                sink->lines++;
                busy.store(1);
                std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
                busy.store(0);
            } else if (worker_reads) {
                std::shared_lock<std::shared_mutex> g(sink->rw);
                busy.store(1);
                std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
                busy.store(0);
            } else {
                std::unique_lock<std::shared_mutex> g(sink->rw);
                sink->lines++;
                busy.store(1);
                std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
                busy.store(0);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }).detach();
    while (!busy.load())
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

extern "C" int autocxx_busy(void)
{
    return busy.load();
}

// The child: the member mutex, or the shared mutex taken the other way.
extern "C" long autocxx_call(int shared, int worker_reads)
{
    if (!shared) {
        std::lock_guard<std::mutex> g(sink->m);
        return ++sink->lines;
    }
    if (worker_reads) {
        std::unique_lock<std::shared_mutex> g(sink->rw);
        return ++sink->lines;
    }
    std::shared_lock<std::shared_mutex> g(sink->rw);
    return sink->lines;
}
