package vault

import (
	"context"
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

const (
	// minLoginRetry and maxLoginRetry bound the backoff between failed background logins.
	minLoginRetry = time.Second
	maxLoginRetry = time.Minute
)

// Start keeps the token alive until ctx is cancelled: it renews a renewable token, logs in
// again when renewal fails or the token nears its maximum TTL, logs in again before a
// non-renewable token expires, and keeps a token without a TTL as it is.
func (c *Client) Start(ctx context.Context) {
	retry := minLoginRetry
	for ctx.Err() == nil {
		// Drain the signal of the login that installed the token we are about to look after.
		select {
		case <-c.loggedIn:
		default:
		}
		if err := c.TokenValid(); err == nil {
			retry = minLoginRetry
			if !c.keepAlive(ctx, c.currentAuth()) {
				continue // ctx is done, or another login replaced the token
			}
		}
		// The token is gone or about to be: log in again, backing off while that fails.
		if err := c.relogin(ctx, c.api.Token()); err != nil {
			c.log.WithError(err).WithField("retry_in", retry).Warn("vault login failed")
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, maxLoginRetry)
		}
	}
}

// keepAlive looks after one token until it needs replacing (then it returns true), another
// login replaced it, or ctx is cancelled.
func (c *Client) keepAlive(ctx context.Context, auth *vaultapi.SecretAuth) (needLogin bool) {
	switch {
	case auth.LeaseDuration <= 0:
		// A token without a TTL (e.g. a root token in development) never expires.
		c.log.Debug("vault token has no TTL, nothing to renew")
		c.waitForLogin(ctx, nil)
		return false
	case !auth.Renewable:
		// Log in again when most of the lifetime has passed.
		c.mu.RLock()
		expiry := c.expiry
		c.mu.RUnlock()
		due := time.Until(expiry) * 4 / 5
		c.log.WithField("login_in", due.Round(time.Second)).Debug("vault token is not renewable, will log in again before it expires")
		timer := time.NewTimer(due)
		defer timer.Stop()
		return c.waitForLogin(ctx, timer.C)
	default:
		return c.renew(ctx, auth)
	}
}

// waitForLogin blocks until ctx is cancelled or another login happens (false), or due fires (true).
func (c *Client) waitForLogin(ctx context.Context, due <-chan time.Time) (needLogin bool) {
	select {
	case <-ctx.Done():
		return false
	case <-c.loggedIn:
		return false
	case <-due:
		return true
	}
}

// renew runs a lifetime watcher on a renewable token until renewal stops (true), another
// login replaced the token, or ctx is cancelled.
func (c *Client) renew(ctx context.Context, auth *vaultapi.SecretAuth) (needLogin bool) {
	watcher, err := c.api.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{
		Secret: &vaultapi.Secret{Auth: auth},
	})
	if err != nil {
		c.setState(fmt.Errorf("vault token renewal: %w", err))
		return true
	}
	go watcher.Start()
	defer watcher.Stop()

	for {
		select {
		case <-ctx.Done():
			return false
		case <-c.loggedIn:
			// A request-driven login replaced the token; Start renews the new one.
			return false
		case out := <-watcher.RenewCh():
			if out.Secret != nil && out.Secret.Auth != nil {
				c.mu.Lock()
				c.expiry = expiryOf(out.Secret.Auth, out.RenewedAt)
				c.state = nil
				c.mu.Unlock()
				c.log.WithField("ttl", time.Duration(out.Secret.Auth.LeaseDuration)*time.Second).Debug("renewed vault token")
			}
		case err := <-watcher.DoneCh():
			if err != nil {
				c.log.WithError(err).Warn("vault token renewal failed, logging in again")
			} else {
				c.log.Info("vault token reached its maximum TTL, logging in again")
			}
			return true
		}
	}
}
