# SPDX-License-Identifier: MIT
# Forks from a multithreaded Ruby (threads busy with a Mutex); the children
# print and exit 5.
$stdout.sync = true
m = Mutex.new
n = 0
stop = false
workers = 3.times.map { Thread.new { until stop; m.synchronize { n += 1 }; end } }
puts "start"
3.times do |i|
  pid = fork { puts "child #{i}"; m.synchronize { n += 1 }; exit!(5) }
  Process.wait(pid)
  puts "child status #{$?.exitstatus}"
end
stop = true
workers.each(&:join)
exit 4
