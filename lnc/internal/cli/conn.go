package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	lance "github.com/lance-go/lance/lnc-client"
)

// Connection defaults and the environment variables that override them.
const (
	defaultEndpoint = "127.0.0.1:1992"
	defaultTimeout  = 10 * time.Second
	envEndpoint     = "LNC_ENDPOINT"
	envToken        = "LNC_TOKEN"
)

// connOptions are the flags every network command shares.
type connOptions struct {
	flags *pflag.FlagSet // where they were registered, to tell set flags

	endpoint      string
	tls           bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsServerName string
	tlsInsecure   bool
	token         string
	tokenFile     string
	timeout       time.Duration
}

// addConnFlags registers the connection flags on fs and binds them to o.
func addConnFlags(fs *pflag.FlagSet, o *connOptions) {
	o.flags = fs
	fs.StringVar(&o.endpoint, "endpoint", defaultEndpoint, "server address, host:port ($"+envEndpoint+" when not given)")
	fs.BoolVar(&o.tls, "tls", false, "connect with TLS (implied by any other --tls-* flag)")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM file of the CAs that sign the server's certificate (default: the system's)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM client certificate for mTLS (needs --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&o.tlsServerName, "tls-server-name", "", "name to verify the server's certificate against (default: the endpoint's host)")
	fs.BoolVar(&o.tlsInsecure, "tls-insecure-skip-verify", false, "do not verify the server's certificate (testing only)")
	fs.StringVar(&o.token, "token", "", "authentication token ($"+envToken+" when not given)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the authentication token")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "bound on connecting and on each request")
}

func (o *connOptions) changed(name string) bool {
	f := o.flags.Lookup(name)
	return f != nil && f.Changed
}

// options checks the flags and turns them into client options, reading
// the environment and the files they name.
func (o *connOptions) options() ([]lance.Option, error) {
	if !o.changed("endpoint") {
		if v := os.Getenv(envEndpoint); v != "" {
			o.endpoint = v
		}
	}
	if o.endpoint == "" {
		return nil, usagef("--endpoint must not be empty")
	}
	if o.timeout <= 0 {
		return nil, usagef("--timeout must be positive, not %v", o.timeout)
	}
	opts := []lance.Option{lance.WithDialTimeout(o.timeout), lance.WithRequestTimeout(o.timeout)}

	token := o.token
	switch {
	case o.changed("token") && o.tokenFile != "":
		return nil, usagef("give --token or --token-file, not both")
	case o.tokenFile != "":
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, fmt.Errorf("--token-file: %s holds no token", o.tokenFile)
		}
	case !o.changed("token"):
		token = os.Getenv(envToken)
	}
	if token != "" {
		opts = append(opts, lance.WithToken(token))
	}

	cfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		opts = append(opts, lance.WithTLS(cfg))
	}
	return opts, nil
}

// tlsConfig returns the TLS configuration the flags ask for, or nil for
// plain TCP.
func (o *connOptions) tlsConfig() (*tls.Config, error) {
	if !o.tls && o.tlsCA == "" && o.tlsCert == "" && o.tlsKey == "" && o.tlsServerName == "" && !o.tlsInsecure {
		return nil, nil
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.tlsServerName,
		InsecureSkipVerify: o.tlsInsecure,
	}
	if o.tlsCA != "" {
		pem, err := os.ReadFile(o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", o.tlsCA)
		}
		cfg.RootCAs = pool
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// dial connects to the server.
func (o *connOptions) dial(ctx context.Context) (*lance.Client, error) {
	opts, err := o.options()
	if err != nil {
		return nil, err
	}
	c, err := lance.Dial(ctx, o.endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", o.endpoint, err)
	}
	return c, nil
}

// withTimeout bounds a short command: connecting plus its requests.
func (o *connOptions) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	// Connecting and one request may each take the timeout.
	return context.WithTimeout(ctx, 2*o.timeout)
}

// completeTopics completes topic names by asking the server; it gives
// nothing when the server cannot be reached.
func completeTopics(o *connOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
		defer cancel()
		if o.timeout > 3*time.Second || o.timeout <= 0 {
			o.timeout = 3 * time.Second
		}
		c, err := o.dial(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer c.Close()
		topics, err := c.ListTopics(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, t := range topics {
			if strings.HasPrefix(t.Name, toComplete) {
				out = append(out, t.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
