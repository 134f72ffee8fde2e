// Node built-ins the widget's dependency tree imports but never uses in a browser.
module.exports = {};
