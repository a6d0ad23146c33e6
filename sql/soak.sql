--
-- soak: thousands of succeeding, failing and cancelled queries in one
-- backend leave its memory where it was: every curl and json-c object is
-- freed on success, on ERROR and on cancel.
--
\! python3 test/mockctl.py reset --count 2500 --seed 1
\! bash test/soak.sh 600
\! python3 test/mockctl.py clear
