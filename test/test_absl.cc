// SPDX-License-Identifier: MIT
// abseil's absl::Mutex in the child of a fork (issue 24; src/auto/absl.c),
// built against Debian's shared libabsl (libabsl-dev).
//
//   test_absl CASE ok|hang
//   mutex  two threads loop on absl::MutexLock, one on absl::ReaderMutexLock
//          of a second mutex
//   cond   threads in Mutex::Await (never true), CondVar::WaitWithTimeout,
//          and LockWhenWithTimeout, with a thread that signals
// The main thread forks FORKS times; each child must take both mutexes
// (TryLock in a loop, 1 s) and exit 0, or exits 3.  "ok" (under auto mode):
// every child takes them; "hang" (without fsafe): some child cannot.  The
// cond case has no "hang" twin: it checks that a thread waiting inside
// abseil does not hold a fork up (CMake fails the "ok" runs on any fsafe
// message, and a fork that waited for a waiter would print one).
#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr int kForks = 30;
constexpr int kChildMs = 1000;

absl::Mutex mu, rmu;
std::atomic<bool> stop{false};
bool never = false;
int ticks = 0;
absl::CondVar cv;

void spin()
{
    for (volatile int k = 0; k < 200; k++) {
    }
}

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

// In the child: both mutexes within kChildMs (write(2) only on the way out).
bool child_takes()
{
    for (int ms = 0; ms < kChildMs; ms++) {
        if (mu.TryLock()) {
            bool r = rmu.TryLock();
            if (r)
                rmu.Unlock();
            mu.Unlock();
            if (r)
                return true;
        }
        sleep_ms(1);
    }
    return false;
}

// Waits for pid up to ms; 124 after killing it, else its exit status.
int wait_child(pid_t pid, long ms)
{
    int st;
    for (long waited = 0;; waited += 5) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (waited >= ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 124;
        }
        sleep_ms(5);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

} // namespace

int main(int argc, char **argv)
{
    setvbuf(stdout, nullptr, _IONBF, 0);
    if (argc != 3 || (strcmp(argv[2], "ok") != 0 && strcmp(argv[2], "hang") != 0)) {
        fprintf(stderr, "usage: %s mutex|cond ok|hang\n", argv[0]);
        return 2;
    }
    bool expect_hang = strcmp(argv[2], "hang") == 0;
    std::vector<std::thread> th;
    if (strcmp(argv[1], "mutex") == 0) {
        for (int k = 0; k < 2; k++)
            th.emplace_back([] {
                while (!stop) {
                    absl::MutexLock l(&mu);
                    spin();
                }
            });
        th.emplace_back([] {
            while (!stop) {
                absl::ReaderMutexLock l(&rmu);
                spin();
            }
        });
    } else if (strcmp(argv[1], "cond") == 0 && !expect_hang) {
        th.emplace_back([] {
            absl::MutexLock l(&mu);
            mu.Await(absl::Condition(+[](bool *s) { return *s || stop.load(); }, &never));
        });
        th.emplace_back([] {
            absl::MutexLock l(&mu);
            while (!stop)
                cv.WaitWithTimeout(&mu, absl::Milliseconds(2));
        });
        th.emplace_back([] {
            while (!stop) {
                int seen = ticks;
                mu.LockWhenWithTimeout(absl::Condition(+[](int *t) { return *t != 0; }, &seen),
                                       absl::Milliseconds(1));
                mu.Unlock();
            }
        });
        th.emplace_back([] {
            while (!stop) {
                {
                    absl::MutexLock l(&mu);
                    ticks++;
                }
                cv.Signal();
                sleep_ms(1);
            }
        });
    } else {
        fprintf(stderr, "%s: unknown case or expectation: %s %s\n", argv[0], argv[1], argv[2]);
        return 2;
    }
    sleep_ms(50);
    int bad = 0, forks = 0;
    for (; forks < kForks && !(expect_hang && bad); forks++) {
        pid_t c = fork();
        if (c < 0) {
            perror("fork");
            return 1;
        }
        if (c == 0)
            _exit(child_takes() ? 0 : 3);
        int st = wait_child(c, 10 * kChildMs);
        if (st != 0) {
            bad++;
            printf("fork %d: child status %d\n", forks, st);
        }
        sleep_ms(2);
    }
    stop = true;
    {
        absl::MutexLock l(&mu); // wakes the Await (its condition reads stop)
    }
    for (auto &t : th)
        t.join();
    printf("%s: %d forks, %d children could not take the mutexes\n", argv[1], forks, bad);
    if (expect_hang && !bad) {
        printf("FAIL: no child failed without fsafe: the test shows nothing\n");
        return 1;
    }
    if (!expect_hang && bad) {
        printf("FAIL: %d of %d children could not take the mutexes\n", bad, forks);
        return 1;
    }
    return 0;
}
