package lance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// errNoJoinTargets means discovery found no address but the member's own.
var errNoJoinTargets = errors.New("no other member address")

// groupRejoinInterval is how often a member that finds itself alone tries its
// seeds again, once it has joined or stopped waiting.
const groupRejoinInterval = 5 * time.Second

// joinLoop joins the other members and tells the coordinator when claims
// may start: at the first successful join, or when the join wait is over.
// Afterwards, while the member sees no other, it keeps trying its seeds,
// so that a member that started before the members it lists, or outlived
// them, meets them when they come (back).
func (g *GroupConsumer) joinLoop() {
	defer g.wg.Done()
	if len(g.cfg.seeds) == 0 && g.cfg.dnsName == "" {
		g.inbox.push(groupItem{kind: itemReady})
		return
	}
	ready := false
	setReady := func() {
		if !ready {
			ready = true
			g.inbox.push(groupItem{kind: itemReady})
		}
	}
	waitOver := time.NewTimer(g.cfg.joinWait)
	defer waitOver.Stop()
	var back groupBackoff
	for {
		wait := groupRejoinInterval
		if g.ml.NumMembers() > 1 {
			// Someone joined us, or we joined before.
			setReady()
		} else {
			n, err := g.tryJoin(g.runCtx)
			switch {
			case n > 0:
				g.log.Info("lance: joined the group", "contacted", n)
				setReady()
				back = groupBackoff{}
			case g.runCtx.Err() != nil:
				return
			default:
				g.log.Debug("lance: join failed", "err", err)
				if !ready {
					wait = back.next()
				}
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-waitOver.C:
			t.Stop()
			if !ready {
				g.log.Info("lance: no other member found; starting alone", "waited", g.cfg.joinWait)
			}
			setReady()
		case <-g.runCtx.Done():
			t.Stop()
			return
		}
	}
}

// tryJoin resolves the seeds and the DNS name, and joins every address
// found but the member's own. It returns how many members answered.
func (g *GroupConsumer) tryJoin(ctx context.Context) (int, error) {
	targets, err := g.joinTargets(ctx)
	if len(targets) == 0 {
		if err == nil {
			err = errNoJoinTargets
		}
		return 0, err
	}
	// One address at a time, so that Close waits for one attempt at most
	// (memberlist's TCPTimeout), not for the whole list.
	n := 0
	errs := []error{err}
	for _, a := range targets {
		if ctx.Err() != nil {
			break
		}
		k, jerr := g.ml.Join([]string{a})
		n += k
		errs = append(errs, jerr)
	}
	if n > 0 {
		return n, nil
	}
	return 0, errors.Join(errs...)
}

// joinTargets resolves the configured seeds and DNS name to ip:port
// addresses, without duplicates and without the member's own address.
func (g *GroupConsumer) joinTargets(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	seen := map[string]bool{g.advertise: true}
	var out []string
	var errs []error
	add := func(host string, port string) {
		ips := []string{host}
		if net.ParseIP(host) == nil {
			var err error
			ips, err = g.cfg.lookup(ctx, host)
			if err != nil {
				errs = append(errs, fmt.Errorf("resolving %q: %w", host, err))
				return
			}
		}
		for _, ip := range ips {
			a := net.JoinHostPort(ip, port)
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	for _, s := range g.cfg.seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		add(host, port)
	}
	if g.cfg.dnsName != "" {
		add(g.cfg.dnsName, strconv.Itoa(g.cfg.dnsPort))
	}
	return out, errors.Join(errs...)
}

// memberlistLog turns memberlist's log lines ("[WARN] memberlist: …")
// into records of the group's slog logger.
type memberlistLog struct{ log *slog.Logger }

func (w memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for _, l := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[DEBUG]", slog.LevelDebug},
		{"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn},
		{"[ERR]", slog.LevelError},
		{"[ERROR]", slog.LevelError},
	} {
		if rest, ok := strings.CutPrefix(line, l.prefix); ok {
			line, level = strings.TrimSpace(rest), l.level
			break
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
