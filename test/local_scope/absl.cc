// SPDX-License-Identifier: MIT
// An abseil plugin (libabsl_synchronization in its scope only): an
// absl::Mutex, tracked by fsafe's interposed members, taken by a thread in
// a loop.
#include "plugin.h"

#include <absl/base/options.h>
#include <absl/synchronization/mutex.h>

#include <atomic>
#include <thread>

#define STR_(x) #x
#define STR(x) STR_(x)
extern "C" const char plugin_probe[] = "AbslInternalMutexYield_" STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);

static absl::Mutex lock;
static std::atomic<bool> stopping;
static std::thread worker;

int plugin_start(void)
{
    worker = std::thread([] {
        while (!stopping.load()) {
            lock.Lock();
            for (volatile int k = 0; k < 200; k++) {
            }
            lock.Unlock();
        }
    });
    return 0;
}

int plugin_check(void)
{
    for (long end = plugin_ms() + 1000; !lock.TryLock();)
        if (plugin_ms() > end)
            return 1;
    lock.Unlock();
    lock.Lock();
    lock.Unlock();
    return 0;
}

void plugin_stop(void)
{
    stopping = true;
    if (worker.joinable())
        worker.join();
}
