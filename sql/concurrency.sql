--
-- concurrency: twenty backends scanning and writing at once, while the
-- mock adds latency and answers some requests with 429 and 503, all finish
-- with correct results or clean errors.
--
\! python3 test/mockctl.py reset --count 600 --seed 3
\! bash test/concurrency.sh 20 3
\! python3 test/mockctl.py reset --count 2500 --seed 1
