// An HTTPS client through Java's own TLS (JSSE) for observer's end-to-end tests: GET the URL
// given as the only argument with certificate checks off, print the status, exit. JSSE runs as
// JIT-compiled Java code, which uprobes cannot reach: the agent must report it as dark.
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.security.cert.X509Certificate;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

public class Client {
    public static void main(String[] args) throws Exception {
        TrustManager[] trustAll = {
            new X509TrustManager() {
                public void checkClientTrusted(X509Certificate[] chain, String type) {}
                public void checkServerTrusted(X509Certificate[] chain, String type) {}
                public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
            }
        };
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, trustAll, null);
        HttpsURLConnection.setDefaultSSLSocketFactory(context.getSocketFactory());
        HttpsURLConnection.setDefaultHostnameVerifier((host, session) -> true);
        HttpURLConnection connection = (HttpURLConnection) new URL(args[0]).openConnection();
        int status = connection.getResponseCode();
        try (InputStream body = connection.getInputStream()) {
            body.readAllBytes();
        }
        System.out.println(status);
    }
}
