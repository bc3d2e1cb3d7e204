// An HTTPS client in standard-library Go for observer's end-to-end tests, HTTP/1.1 only, with
// certificate checks off (the tests' certificates are self-signed).
//
// Usage:
//
//	client get            read URLs from standard input, one per line; GET each on one
//	                      keep-alive connection and print {"status":N,"body":"..."} per line
//	client load URL SECS WORKERS
//	                      GET URL from WORKERS goroutines until standard input ends, or
//	                      SECS seconds at most; print {"ok":N,"failed":N,"first_error":"..."}
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func client() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			// A non-nil empty map keeps the transport on HTTP/1.1.
			TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
			ForceAttemptHTTP2: false,
		},
	}
}

func get(c *http.Client, url string) (int, string, error) {
	response, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	return response.StatusCode, string(body), err
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: client get | client load URL SECS WORKERS")
		os.Exit(2)
	}
	c := client()
	switch os.Args[1] {
	case "get":
		lines := bufio.NewScanner(os.Stdin)
		out := json.NewEncoder(os.Stdout)
		for lines.Scan() {
			url := strings.TrimSpace(lines.Text())
			if url == "" {
				continue
			}
			status, body, err := get(c, url)
			result := map[string]interface{}{"status": status, "body": body}
			if err != nil {
				result["error"] = err.Error()
			}
			out.Encode(result)
		}
	case "load":
		if len(os.Args) != 5 {
			fmt.Fprintln(os.Stderr, "usage: client load URL SECS WORKERS")
			os.Exit(2)
		}
		seconds, _ := strconv.Atoi(os.Args[3])
		workers, _ := strconv.Atoi(os.Args[4])
		deadline := time.Now().Add(time.Duration(seconds) * time.Second)
		var stop int32
		go func() {
			io.Copy(io.Discard, os.Stdin)
			atomic.StoreInt32(&stop, 1)
		}()
		var ok, failed int64
		var firstError atomic.Value
		var wg sync.WaitGroup
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) && atomic.LoadInt32(&stop) == 0 {
					status, body, err := get(c, os.Args[2])
					if err == nil && status == 200 && strings.HasPrefix(body, "hello from go ") {
						atomic.AddInt64(&ok, 1)
						continue
					}
					atomic.AddInt64(&failed, 1)
					if err == nil {
						err = fmt.Errorf("status %d body %q", status, body)
					}
					firstError.CompareAndSwap(nil, err.Error())
				}
			}()
		}
		wg.Wait()
		first, _ := firstError.Load().(string)
		json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"ok": ok, "failed": failed, "first_error": first})
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
