// SPDX-License-Identifier: MIT
// A C++ plugin (libstdc++ in its scope only): function-local statics, whose
// first use calls __cxa_guard_acquire/_release (interposed by fsafe), one
// first used in each child, and a std::mutex taken by a thread in a loop.
#include "plugin.h"

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

extern "C" const char plugin_probe[] = "_ZSt9terminatev"; // std::terminate

static std::mutex lock;
static std::atomic<bool> stopping;
static std::thread worker;

static const std::string &greeting()
{
    static const std::string s(40, 'g'); // guarded: a call in the parent first
    return s;
}

static int fresh(int seed)
{
    static const int v = seed * 3; // guarded: first used in a child
    return v;
}

int plugin_start(void)
{
    worker = std::thread([] {
        while (!stopping.load()) {
            std::lock_guard<std::mutex> g(lock);
            for (volatile int k = 0; k < 200; k++) {
            }
        }
    });
    return 0;
}

int plugin_check(void)
{
    for (long end = plugin_ms() + 1000; !lock.try_lock();)
        if (plugin_ms() > end)
            return 1;
    lock.unlock();
    return greeting().size() == 40 && fresh(7) == 21 ? 0 : 1;
}

void plugin_stop(void)
{
    stopping = true;
    if (worker.joinable())
        worker.join();
}
