# SPDX-License-Identifier: MIT
# Forks repeatedly, alternately from the main thread and from a Ruby Thread,
# while the FsafeDemo extension's native thread keeps taking its lock; each
# child calls FsafeDemo.take (1 s timeout).  Every child is waited for with a
# timeout and its exit status checked.
#
#   ruby -I EXTDIR fork_demo.rb --expect ok|hang --fsafe absent|preload|linked [--forks N]
#
# ok: every child completes.  hang: at least one child forked from each kind of
# thread hangs (forking stops once both have).  --fsafe says how fsafe is in the process, and what the
# extension's registration and fsafe's counters must then show.
require 'fsafe_demo'

opts = { forks: 10 }
ARGV.each_slice(2) { |k, v| opts[k.sub(/^--/, '').to_sym] = v }
expect, how, forks = opts[:expect], opts[:fsafe], Integer(opts[:forks])
abort 'usage: fork_demo.rb --expect ok|hang --fsafe absent|preload|linked [--forks N]' unless
  %w[ok hang].include?(expect) && %w[absent preload linked].include?(how)

def fail!(msg)
  warn "FAIL: #{msg}"
  exit 1
end

CHILD_HUNG = 3
KILLED = 124

# Exit status of pid, 128+signal, or KILLED after timeout seconds.
def wait_child(pid, timeout)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
  loop do
    if Process.waitpid(pid, Process::WNOHANG)
      st = $?
      return st.exited? ? st.exitstatus : 128 + st.termsig.to_i
    end
    if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      Process.kill(:KILL, pid)
      Process.waitpid(pid)
      return KILLED
    end
    sleep 0.005
  end
end

want_reg = how == 'absent' ? Errno::ENOSYS::Errno : 0
fail!("registration returned #{FsafeDemo.registration}, expected #{want_reg}") unless
  FsafeDemo.registration == want_reg
fail!("extension is #{FsafeDemo::LINKED ? '' : 'not '}linked to libfsafe") unless
  FsafeDemo::LINKED == (how == 'linked')

FsafeDemo.start
sleep 0.02

child = proc { exit!(FsafeDemo.take(1000) ? 0 : CHILD_HUNG) }
done = hung = 0
hung_from = Hash.new(0)
forks.times do |i|
  from = i.even? ? 'main thread' : 'Ruby Thread'
  pid = i.even? ? fork(&child) : Thread.new { fork(&child) }.value
  st = wait_child(pid, 5)
  case st
  when 0 then done += 1
  when CHILD_HUNG, KILLED
    hung += 1
    hung_from[from] += 1
  else fail!("child #{i} (forked from the #{from}) ended with status #{st}")
  end
  puts "child #{i} forked from the #{from}: #{st.zero? ? 'completed' : 'HUNG'}"
  break if hung_from.size == 2 && expect == 'hang'
end

stats = FsafeDemo.stats
puts "children completed: #{done}, hung: #{hung}; fsafe stats [forks, forks_via_handler]: #{stats.inspect}"
case how
when 'absent'
  fail!('fsafe stats present without fsafe') unless stats.nil?
when 'preload'
  # Preloaded libfsafe comes before libc, so Ruby's fork() is fsafe's.
  fail!("expected #{forks} forks, none via the atfork handler") unless stats == [forks, 0]
when 'linked'
  # libfsafe arrived with the extension, long after Ruby bound fork() to libc:
  # every fork reached fsafe through its pthread_atfork prepare handler.
  fail!("expected #{forks} forks, all via the atfork handler") unless stats == [forks, forks]
end
fail!('expected every child to complete') if expect == 'ok' && hung > 0
fail!("expected children forked from both threads to hang without fsafe, got #{hung_from}") if
  expect == 'hang' && hung_from.size < 2
puts 'OK'
