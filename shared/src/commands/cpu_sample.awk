$0 == "--" { second = 1; next }
{
  pid = $1
  rest = $0; sub(/^.*\) /, "", rest)
  comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\) [^)]*$/, "", comm)
  if (split(rest, f, " ") < 20) next
  key = pid ":" f[20]
  if (!second) { t0[key] = f[12] + f[13]; next }
  if (!(key in t0) || pid == 1 || f[1] == "Z" || int(f[7] / 2097152) % 2 == 1) next
  unit = "-"; cg = "/proc/" pid "/cgroup"
  while ((getline line < cg) > 0) if (match(line, /[^\/]+\.service/)) unit = substr(line, RSTART, RLENGTH)
  close(cg)
  gsub(/[^A-Za-z0-9._+@:-]/, "?", comm)
  printf "%d %s %.1f %s %s\n", pid, f[20], (f[12] + f[13] - t0[key]) * 100 / hz, unit, comm
}
