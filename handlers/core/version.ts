declare const __PACKAGE_VERSION__: string | undefined;

/** The library's version, written into the bundle when it is built. */
export const VERSION: string = typeof __PACKAGE_VERSION__ === 'string' ? __PACKAGE_VERSION__ : '0.0.0-dev';
