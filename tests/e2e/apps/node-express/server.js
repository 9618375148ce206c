// The frontend: express on 127.0.0.1:$PORT, answering with what the build made.
const express = require("express");
const banner = require("./dist/banner.json");

const app = express();
app.get("/", (req, res) => {
  res.type("text/plain").send(`node ${process.env.SITE_NAME}: ${banner.built}\n`);
});
app.listen(Number(process.env.PORT), process.env.HOST || "127.0.0.1");
